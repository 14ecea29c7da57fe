// statement_clues against the gates it replaced, kept here as their definition: one search per
// question (might_change_catalog chunk by chunk, contains_ignoring_case, whole-word search). The
// answers must be the same on the rewriter's corpora, the e2e invariant corpus, crafted texts and
// random ones.
#include "rewriter/statements/statement_clues.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "../case_file.hpp"
#include "common/text.hpp"
#include "rewriter/statements/catalog_effect.hpp"

using seedproxy::rewriter::search_path_clue;
using seedproxy::rewriter::statement_clues;
using seedproxy::rewriter::StatementClues;
namespace text = seedproxy::text;

namespace {

bool identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

bool has_word(std::string_view text, std::string_view word) {
  for (std::size_t i = 0; i + word.size() <= text.size(); ++i) {
    if (i > 0 && identifier_char(text[i - 1])) continue;
    std::size_t j = 0;
    while (j < word.size() && text::ascii_lower(text[i + j]) == word[j]) ++j;
    if (j == word.size() && (i + j == text.size() || !identifier_char(text[i + j]))) return true;
  }
  return false;
}

std::string first_word(std::string_view chunk) {
  std::size_t i = 0;
  while (i < chunk.size()) {
    const char c = chunk[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(') {
      ++i;
    } else if (chunk.substr(i, 2) == "--") {
      const auto end = chunk.find('\n', i);
      i = end == std::string_view::npos ? chunk.size() : end + 1;
    } else if (chunk.substr(i, 2) == "/*") {
      int depth = 0;
      while (i < chunk.size()) {
        if (chunk.substr(i, 2) == "/*") {
          ++depth;
          i += 2;
        } else if (chunk.substr(i, 2) == "*/") {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else {
      break;
    }
  }
  std::string word;
  while (i < chunk.size() && identifier_char(chunk[i])) word += text::ascii_lower(chunk[i++]);
  return word;
}

bool chunk_might_change_catalog(std::string_view chunk) {
  const std::string word = first_word(chunk);
  static constexpr std::array<std::string_view, 6> starts{"create", "alter", "drop",
                                                          "import", "do",    "call"};
  if (std::find(starts.begin(), starts.end(), word) != starts.end()) return true;
  if (word == "explain") return has_word(chunk, "create");
  if (word == "select" || word == "with") return has_word(chunk, "into");
  return false;
}

bool old_might_change_catalog(std::string_view sql) {
  std::size_t begin = 0;
  while (begin <= sql.size()) {
    auto end = sql.find(';', begin);
    if (end == std::string_view::npos) end = sql.size();
    if (chunk_might_change_catalog(sql.substr(begin, end - begin))) return true;
    begin = end + 1;
  }
  return false;
}

// Comments read left to right (a comment's opener inside another comment is part of it): does
// one hold a ';'? Such a text may hide a statement's first word from the chunks, so it is always
// a catalog clue (the old gates missed "-- step 1; ...\nALTER TABLE ...").
bool comment_holds_semicolon(std::string_view sql) {
  std::size_t i = 0;
  while (i + 1 < sql.size()) {
    if (sql.substr(i, 2) == "--") {
      const std::size_t line = std::min(sql.find('\n', i), sql.size());
      if (sql.substr(i, line - i).find(';') != std::string_view::npos) return true;
      i = line;
    } else if (sql.substr(i, 2) == "/*") {
      int depth = 0;
      while (i < sql.size()) {
        if (sql.substr(i, 2) == "/*") {
          ++depth;
          i += 2;
        } else if (sql.substr(i, 2) == "*/") {
          i += 2;
          if (--depth == 0) break;
        } else {
          if (sql[i++] == ';') return true;
        }
      }
    } else {
      ++i;
    }
  }
  return false;
}

StatementClues by_definition(std::string_view sql) {
  StatementClues out;
  out.catalog_change = old_might_change_catalog(sql) || comment_holds_semicolon(sql);
  out.search_path = text::contains_ignoring_case(sql, "search_path") ||
                    text::contains_ignoring_case(sql, "reset");
  out.temporary = text::contains_ignoring_case(sql, "temp") &&
                  (has_word(sql, "temp") || has_word(sql, "temporary") || has_word(sql, "pg_temp"));
  out.prepare = has_word(sql, "prepare");
  out.execute = has_word(sql, "execute");
  out.deallocate = has_word(sql, "deallocate");
  out.drop = has_word(sql, "drop");
  out.discard = has_word(sql, "discard");
  return out;
}

void check_same(std::string_view sql) {
  CAPTURE(sql);
  const StatementClues expected = by_definition(sql);
  const StatementClues got = statement_clues(sql);
  CHECK(got.catalog_change == expected.catalog_change);
  CHECK(got.search_path == expected.search_path);
  CHECK(got.temporary == expected.temporary);
  CHECK(got.prepare == expected.prepare);
  CHECK(got.execute == expected.execute);
  CHECK(got.deallocate == expected.deallocate);
  CHECK(got.drop == expected.drop);
  CHECK(got.discard == expected.discard);
  CHECK(seedproxy::rewriter::might_change_catalog(sql) == expected.catalog_change);
  CHECK(search_path_clue(sql) == expected.search_path);
}

std::vector<std::string> corpus() {
  std::vector<std::string> out;
  for (const auto& entry :
       std::filesystem::directory_iterator(SEEDPROXY_SOURCE_DIR "/tests/rewriter/cases"))
    if (entry.path().extension() == ".test")
      for (auto& c : seedproxy::test::read_case_file(entry.path().string()).cases)
        out.push_back(std::move(c.sql));
  std::ifstream invariant(SEEDPROXY_SOURCE_DIR "/tests/e2e/invariant_corpus.sql");
  std::stringstream whole;
  whole << invariant.rdbuf();
  out.push_back(whole.str());  // all of it as one text, and line by line
  std::string line;
  while (std::getline(whole, line)) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("statement clues are the old gates' answers on the corpora") {
  const auto texts = corpus();
  REQUIRE(texts.size() > 300);
  int catalog = 0;
  for (const auto& sql : texts) {
    check_same(sql);
    catalog += statement_clues(sql).catalog_change;
  }
  CHECK(catalog > 10);  // the corpora hold DDL, so the comparison covers both answers
}

TEST_CASE("statement clues on crafted texts") {
  const char* texts[] = {
      "",
      ";",
      ";;",
      "SELECT abalance FROM pgbench_accounts WHERE aid = 123",
      "select 'create table x' into t",
      "SELECT 1 -- into\n",
      "/* into */ SELECT 1",
      "SELECT 1; alter table t add column b int",
      "SELECT 'a; DROP TABLE x'",
      "/* ; */ CREATE TABLE t (a int)",
      "-- a;b\nCREATE TABLE t (a int)",
      "  -- a migration\n/* step /* nested */ 1 */ CREATE TABLE t (a int)",
      "/* unterminated CREATE",
      "((SELECT 1 INTO t))",
      "EXPLAIN ANALYZE CREATE TABLE e AS SELECT 1",
      "explain select created from t",
      "EXPLAIN SELECT 1; CREATE",
      "With x AS (SELECT 1) SELECT * INTO y FROM x",
      "SELECT intox, xinto, in_to, \"into\" FROM t",
      "SELECT $$ into $$",
      "SELECT $a$ ; create $a$",
      "DO $$ BEGIN END $$",
      "do",
      "doo",
      "CALL p()",
      "callx()",
      "IMPORT FOREIGN SCHEMA s FROM SERVER x INTO y",
      "SET search_path TO a, b",
      "set SEARCH_PATH = default",
      "RESET ALL",
      "SELECT preset, resets, xsearch_pathx FROM t",
      "SELECT search_pat, rese FROM t",
      "SELECT 'search_path'",
      "search_path",
      "reset",
      "CREATE TEMP TABLE t (a int)",
      "create temporary table t (a int)",
      "CREATE TABLE pg_temp.t (a int)",
      "SELECT temperature, tempo, attempt FROM t",
      "SELECT temp_x FROM temp",
      "PREPARE p AS SELECT 1; EXECUTE p; DEALLOCATE p; DISCARD ALL; DROP TABLE t",
      "prepared, executed, deallocated, dropped, discarded",
      "Prepare_x EXECUTE$ dealLocate DROP1 disCard",
      "SELECT 1;DROP TABLE t;",
      "\tALTER\nTABLE t",
      "\v CREATE TABLE t (a int)",
      "\xc3\xa9"
      "create table t (a int)",
      "create\xc3\xa9 table t (a int)",
      "SELECT 1 INTO\xc3\xa9 t",
      "SELECT E'\\'; create' INTO t",
      "WITH RECURSIVE r AS (SELECT 1) SELECT * FROM r",
      "(((",
      "--",
      "/*",
      "/**/",
      "/* /* */ CREATE",
  };
  for (const char* sql : texts) check_same(sql);
  CHECK(statement_clues("SELECT abalance FROM pgbench_accounts WHERE aid = 123") ==
        StatementClues{});
  // A ';' in a comment before the first word no longer hides the DDL after it.
  CHECK(seedproxy::rewriter::might_change_catalog("-- step 1; add b\nALTER TABLE t ADD b int"));
  CHECK(seedproxy::rewriter::might_change_catalog("/* a; b */ ALTER TABLE t ADD b int"));
  CHECK(seedproxy::rewriter::might_change_catalog("SELECT 1 /* ; */ INTO t"));
  // A long run of dashes is read once, not once per dash.
  CHECK_FALSE(statement_clues("SELECT 1 " + std::string(1 << 20, '-')).catalog_change);
}

TEST_CASE("statement clues on random texts made of keywords, quotes, comments and separators") {
  const std::array<std::string_view, 40> pieces{
      "create",  "CREATE",   "alter",   "Drop",       "import",  "do",          "call",
      "explain", "select",   "WITH",    "into",       "INTO",    "temp",        "TEMPORARY",
      "pg_temp", "prepare",  "execute", "deallocate", "discard", "search_path", "reset",
      "Reset",   "x",        "_",       "$",          "1",       " ",           "\n",
      ";",       "(",        "'",       "\"",         "--",      "/*",          "*/",
      "$$",      "\xc3\xa9", "\t",      "e",          "p"};
  std::mt19937 random(20261205);
  std::uniform_int_distribution<std::size_t> piece(0, pieces.size() - 1);
  // Up to about 600 bytes: the walk reads 64 bytes at a time, so words, comments and chunks
  // cross block boundaries at every offset, and some words are longer than a block.
  std::uniform_int_distribution<int> length(0, 80);
  std::uniform_int_distribution<int> long_word(0, 40);
  for (int n = 0; n < 30000; ++n) {
    std::string sql;
    for (int k = length(random); k > 0; --k) {
      const int extra = long_word(random);
      if (extra >= 36)
        sql += std::string(static_cast<std::size_t>(extra * 2 - 6), "xsr"[extra % 3]);
      sql += pieces[piece(random)];
    }
    const StatementClues expected = by_definition(sql);
    const StatementClues got = statement_clues(sql);
    if (!(got == expected) || search_path_clue(sql) != expected.search_path)
      check_same(sql);  // names the text and the clue that differ
    REQUIRE(got == expected);
    REQUIRE(search_path_clue(sql) == expected.search_path);
  }
}

TEST_CASE("the search_path clue alone at every offset and length") {
  // The search reads 16 positions at a time, 26 bytes ahead, and the rest zero-padded: each
  // substring (and near misses) at every offset of texts of every length up to 90 bytes.
  for (const std::string_view word :
       {"reset", "RESET", "search_path", "Search_Path", "rese", "resex", "search_pat",
        "search_pathx", "xreset", "r eset", "sxxxxxxxxxh", "rxxxt"}) {
    for (std::size_t length = 0; length <= 90; ++length) {
      for (std::size_t at = 0; at + word.size() <= length; ++at) {
        std::string sql(length, 'x');
        sql.replace(at, word.size(), word);
        const bool expected = text::contains_ignoring_case(sql, "reset") ||
                              text::contains_ignoring_case(sql, "search_path");
        CAPTURE(sql);
        REQUIRE(search_path_clue(sql) == expected);
        REQUIRE(statement_clues(sql).search_path == expected);
      }
    }
  }
  CHECK(search_path_clue("SET search_path TO a"));
  CHECK_FALSE(search_path_clue("SELECT abalance FROM pgbench_accounts WHERE aid = 51234;"));
  CHECK_FALSE(search_path_clue(""));
}
