// Thousands of broken statements (corpus cases truncated, spliced, sprinkled with random bytes
// and tokens, nested deeply) fed to rewrite(): it must return, whatever it returns.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "rewriter/splice/rewriter.hpp"
#include "tests/rewriter/case_file.hpp"

namespace {

using seedproxy::rewriter::RewriteResult;

constexpr std::string_view fragments[] = {
    "(",
    ")",
    ",",
    "*",
    ".",
    ";",
    "::",
    "'",
    "\"",
    "$$",
    "/*",
    "*/",
    "--",
    "\n",
    "U&\"",
    " UESCAPE '!'",
    " AS ",
    "SELECT ",
    " FROM ",
    " WHERE ",
    "DEFAULT",
    " JOIN ",
    " USING (",
    " ON ",
    " UNION ",
    "VALUES (",
    "risk_score",
    "account",
    "a.",
    "excluded.",
    " RETURNING *",
    " ORDER BY ",
    "TABLE ",
    "WITH RECURSIVE r AS (",
    " LATERAL ",
    "(SELECT ",
    "ROW(",
    "[1]",
    "\xc3\xa9",
    "\xff",
    "$1",
    "E'\\'",
    "NULL",
    " NATURAL ",
    " INTO ",
    "SET ",
};

struct Corpus {
  std::vector<seedproxy::test::CaseFile> files;
  std::vector<std::pair<std::size_t, std::string>> statements;  // (file, sql)
};

Corpus load_corpus() {
  Corpus corpus;
  std::vector<std::filesystem::path> paths;
  for (const auto& entry :
       std::filesystem::directory_iterator(SEEDPROXY_SOURCE_DIR "/tests/rewriter/cases"))
    if (entry.path().extension() == ".test") paths.push_back(entry.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& path : paths) {
    corpus.files.push_back(seedproxy::test::read_case_file(path.string()));
    for (const auto& c : corpus.files.back().cases)
      corpus.statements.emplace_back(corpus.files.size() - 1, c.sql);
  }
  return corpus;
}

std::string mutate(std::string sql, const Corpus& corpus, std::mt19937_64& random) {
  auto pick = [&](std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  };
  const int rounds = 1 + static_cast<int>(pick(4));
  for (int round = 0; round < rounds; ++round) {
    const std::size_t at = pick(sql.size() + 1);
    switch (pick(7)) {
      case 0:  // truncate
        sql.resize(at);
        break;
      case 1:  // a random byte, anywhere
        sql.insert(sql.begin() + static_cast<std::ptrdiff_t>(at),
                   static_cast<char>(std::uniform_int_distribution<int>(1, 255)(random)));
        break;
      case 2:  // overwrite a byte
        if (!sql.empty())
          sql[std::min(at, sql.size() - 1)] =
              static_cast<char>(std::uniform_int_distribution<int>(1, 255)(random));
        break;
      case 3:  // cut a range
        sql.erase(at, pick(12) + 1);
        break;
      case 4:  // a token that matters to the resolver
        sql.insert(at, fragments[pick(std::size(fragments))]);
        break;
      case 5: {  // splice another case in
        const auto& other = corpus.statements[pick(corpus.statements.size())].second;
        sql = sql.substr(0, at) + other.substr(pick(other.size() + 1));
        break;
      }
      default: {  // duplicate a range
        const std::size_t length = pick(40) + 1;
        sql.insert(at, sql.substr(at, length));
        break;
      }
    }
  }
  return sql;
}

// Word-level mutations keep many statements parseable, so they reach the resolver.
std::string shuffle_words(const std::string& sql, const std::vector<std::string>& vocabulary,
                          std::mt19937_64& random) {
  std::vector<std::string> words;
  std::size_t at = 0;
  while (at < sql.size()) {
    const std::size_t space = sql.find(' ', at);
    words.push_back(sql.substr(at, space == std::string::npos ? std::string::npos : space - at));
    if (space == std::string::npos) break;
    at = space + 1;
  }
  if (words.empty()) return sql;
  auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  };
  const int rounds = 1 + static_cast<int>(pick(3));
  for (int round = 0; round < rounds && !words.empty(); ++round) {
    const std::size_t i = pick(words.size());
    switch (pick(5)) {
      case 0:
        words[i] = vocabulary[pick(vocabulary.size())];
        break;
      case 1:
        words.insert(words.begin() + static_cast<std::ptrdiff_t>(i), words[i]);
        break;
      case 2:
        words.erase(words.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      case 3:
        std::swap(words[i], words[pick(words.size())]);
        break;
      default:
        words.insert(words.begin() + static_cast<std::ptrdiff_t>(i),
                     vocabulary[pick(vocabulary.size())] + ",");
        break;
    }
  }
  std::string out;
  for (const auto& word : words) out += (out.empty() ? "" : " ") + word;
  return out;
}

std::string repeat(std::string_view piece, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += piece;
  return out;
}

}  // namespace

TEST_CASE("rewrite() returns on broken and hostile input") {
  const Corpus corpus = load_corpus();
  REQUIRE(!corpus.statements.empty());
  std::vector<seedproxy::rewriter::Catalog> catalogs;
  std::vector<seedproxy::rewriter::SeedSet> seeds;
  for (const auto& file : corpus.files) {
    catalogs.emplace_back(file.relations, 1);
    std::vector<std::string> errors;
    seeds.push_back(seedproxy::rewriter::SeedSet::compile(file.seeds, catalogs.back(), 1, errors));
  }
  std::uint64_t seed = 20261124;
  if (const char* env = std::getenv("SEEDPROXY_FUZZ_SEED")) seed = std::strtoull(env, nullptr, 10);
  INFO("SEEDPROXY_FUZZ_SEED=" << seed);
  std::mt19937_64 random(seed);

  std::vector<std::string> vocabulary;
  for (const auto& statement : corpus.statements)
    for (std::size_t at = 0; at < statement.second.size();) {
      const std::size_t space = statement.second.find(' ', at);
      vocabulary.push_back(statement.second.substr(at, space - at));
      at = space == std::string::npos ? statement.second.size() : space + 1;
    }

  std::vector<std::pair<std::size_t, std::string>> inputs;
  for (int i = 0; i < 2000; ++i) {
    const auto& [file, sql] = corpus.statements[random() % corpus.statements.size()];
    inputs.emplace_back(
        file, i % 2 ? mutate(sql, corpus, random) : shuffle_words(sql, vocabulary, random));
  }
  // Deep and long shapes: nesting, long chains, many statements, many references.
  inputs.emplace_back(
      0, "SELECT " + repeat("(", 3000) + "risk_score" + repeat(")", 3000) + " FROM account");
  inputs.emplace_back(
      0, "SELECT risk_score FROM account WHERE " + repeat("risk_score + ", 1500) + "1 > 0");
  inputs.emplace_back(
      0, "SELECT risk_score FROM account WHERE " + repeat("risk_score + ", 20000) + "1 > 0");
  inputs.emplace_back(0, repeat("SELECT * FROM account;", 500));
  inputs.emplace_back(
      0, "SELECT " + repeat("(SELECT ", 200) + "risk_score" + repeat(" FROM account)", 200));
  inputs.emplace_back(
      0, "SELECT * FROM " + repeat("account a JOIN ", 300) + "account z" + repeat(" ON true", 300));
  inputs.emplace_back(0, std::string("SELECT risk_score\0FROM account", 29));
  inputs.emplace_back(0, "");

  std::size_t rewritten = 0, refused = 0;
  for (const auto& [file, sql] : inputs) {
    INFO(sql.substr(0, 400));
    const auto result = seedproxy::rewriter::rewrite(
        {sql, catalogs[file], seeds[file], corpus.files[file].search_path});
    if (result.outcome == RewriteResult::Outcome::rewritten) ++rewritten;
    if (result.outcome == RewriteResult::Outcome::refused) {
      ++refused;
      CHECK(!result.error.sqlstate.empty());
    }
  }
  MESSAGE("fuzz inputs: " << inputs.size() << ", rewritten " << rewritten << ", refused "
                          << refused);
}
