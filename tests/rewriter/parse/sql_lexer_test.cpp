// lex_sql against libpg_query's own scanner: every corpus statement, hand-picked lexical corner
// cases, and thousands of mutated statements must give the same tokens whenever the text parses.
#include "rewriter/parse/sql_lexer.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "rewriter/parse/pg_parser.hpp"
#include "tests/rewriter/case_file.hpp"

namespace {

using seedproxy::rewriter::lex_sql;
using seedproxy::rewriter::parse_sql;
using seedproxy::rewriter::scan_with_libpg_query;
using seedproxy::rewriter::Token;
using seedproxy::rewriter::TokenKind;

std::vector<std::string> corpus_statements() {
  std::vector<std::string> out;
  for (const auto& entry :
       std::filesystem::directory_iterator(SEEDPROXY_SOURCE_DIR "/tests/rewriter/cases"))
    if (entry.path().extension() == ".test")
      for (const auto& c : seedproxy::test::read_case_file(entry.path().string()).cases)
        out.push_back(c.sql);
  std::sort(out.begin(), out.end());
  return out;
}

std::string describe(const std::vector<Token>& tokens, std::string_view sql) {
  std::string out;
  for (const auto& t : tokens) {
    out.append("[").append(
        sql.substr(static_cast<std::size_t>(t.start), static_cast<std::size_t>(t.end - t.start)));
    out.append("|").append(std::to_string(static_cast<int>(t.kind))).append("] ");
  }
  return out;
}

bool same(const std::vector<Token>& a, const std::vector<Token>& b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](const Token& x, const Token& y) {
    return x.start == y.start && x.end == y.end && x.single == y.single && x.kind == y.kind;
  });
}

// Checks one text when PostgreSQL parses it; returns whether it was checked.
bool check(const std::string& sql) {
  if (parse_sql(sql).failure) return false;
  const auto reference = scan_with_libpg_query(sql);
  REQUIRE(reference.has_value());
  const auto tokens = lex_sql(sql);
  INFO("sql: ", sql);
  INFO("lex_sql:   ", describe(tokens, sql));
  INFO("libpg_query: ", describe(*reference, sql));
  CHECK(same(tokens, *reference));
  return true;
}

}  // namespace

TEST_CASE("lex_sql matches libpg_query on every corpus statement") {
  int checked = 0;
  for (const auto& sql : corpus_statements()) checked += check(sql) ? 1 : 0;
  MESSAGE("corpus statements compared: ", checked);
  CHECK(checked > 400);
}

TEST_CASE("lex_sql matches libpg_query on lexical corner cases") {
  const char* const cases[] = {
      "SELECT a/* x /* nested */ y */.b FROM t",
      "SELECT a -- comment\n.b FROM t",
      "SELECT 'one'\n'two', 'a' IS NULL FROM t",
      "SELECT 'x'\t\n  'y', 'z'\r'w' FROM t",
      "SELECT E'it\\'s', e'\\\\', B'101', X'1F', N'nchar' FROM t",
      "SELECT U&\"d#0061t#+000061\" UESCAPE '#', U&'\\0041' FROM t",
      "SELECT U&\"!0061\" UESCAPE '!' FROM t",
      "SELECT $$a$b$$, $tag$ $$ $tag$, $1, $12 FROM t WHERE x = $1",
      "SELECT a$b, _x1, \"q\"\"uote\", \"x\" FROM t",
      "SELECT 1.5, .5, 1e10, 1.5E-3, 2e+4, 10. FROM t",
      "SELECT 2*-a.b, a*/*c*/b, 1-- c\n, a <= b, a<>b, a!=b, a>=b FROM t",
      "SELECT a::int, b @> c, d || e, f ~~ g, h #- '{a}', @-1, -+-1, a+-b FROM t",
      "SELECT f(x := 1)",
      "SELECT t.* , t .  * , ( t ) . * FROM t",
      "SELECT \"Ünïcode\", ü, 日本 FROM t",
      "SELECT a FROM t WHERE a IN (SELECT b FROM u) ORDER BY 1 LIMIT 2 OFFSET 3",
      "SELECT (ARRAY[1,2])[1:2], a[1] FROM t",
      "SELECT func(a => 1, b := 2)",
      "select\tA\fFROM\rt\n;",
      "SELECT 1; SELECT 2;",
  };
  for (const char* sql : cases) CHECK_MESSAGE(check(sql), "does not parse: ", std::string(sql));
}

TEST_CASE("lex_sql knows PostgreSQL's reserved keywords") {
  // Every keyword of PostgreSQL 15, reserved or not, checked against the scanner's own table.
  const std::string words =
      "abort absolute access action add admin after aggregate all also alter always analyse "
      "analyze and any array as asc asensitive assertion assignment asymmetric at atomic attach "
      "attribute authorization backward before begin between bigint binary bit boolean both "
      "breadth by cache call called cascade cascaded case cast catalog chain char character "
      "characteristics check checkpoint class close cluster coalesce collate collation column "
      "columns comment comments commit committed compression concurrently configuration conflict "
      "connection constraint constraints content continue conversion copy cost create cross csv "
      "cube current current_catalog current_date current_role current_schema current_time "
      "current_timestamp current_user cursor cycle data database day deallocate dec decimal "
      "declare default defaults deferrable deferred definer delete delimiter delimiters depends "
      "depth desc detach dictionary disable discard distinct do document domain double drop each "
      "else enable encoding encrypted end enum escape event except exclude excluding exclusive "
      "execute exists explain expression extension external extract false family fetch filter "
      "finalize first float following for force foreign forward freeze from full function "
      "functions generated global grant granted greatest group grouping groups handler having "
      "header hold hour identity if ilike immediate immutable implicit import in include "
      "including increment index indexes inherit inherits initially inline inner inout input "
      "insensitive insert instead int integer intersect interval into invoker is isnull "
      "isolation join key label language large last lateral leading leakproof least left level "
      "like limit listen load local localtime localtimestamp location lock locked logged mapping "
      "match matched materialized maxvalue merge method minute minvalue mode month move name "
      "names national natural nchar new next nfc nfd nfkc nfkd no none normalize normalized not "
      "nothing notify notnull nowait null nullif nulls numeric object of off offset oids old on "
      "only operator option options or order ordinality others out outer over overlaps overlay "
      "overriding owned owner parallel parameter parser partial partition passing password "
      "placing plans policy position preceding precision prepare prepared preserve primary prior "
      "privileges procedural procedure procedures program publication quote range read real "
      "reassign recheck recursive ref references referencing refresh reindex relative release "
      "rename repeatable replace replica reset restart restrict return returning returns revoke "
      "right role rollback rollup routine routines row rows rule savepoint schema schemas scroll "
      "search second security select sequence sequences serializable server session "
      "session_user set setof sets share show similar simple skip smallint snapshot some sql "
      "stable standalone start statement statistics stdin stdout storage stored strict strip "
      "subscription substring support symmetric sysid system table tables tablesample tablespace "
      "temp template temporary text then ties time timestamp to trailing transaction transform "
      "treat trigger trim true truncate trusted type types uescape unbounded uncommitted "
      "unencrypted union unique unknown unlisten unlogged until update user using vacuum valid "
      "validate validator value values varchar variadic varying verbose version view views "
      "volatile when where whitespace window with within without work wrapper write xml "
      "xmlattributes xmlconcat xmlelement xmlexists xmlforest xmlnamespaces xmlparse xmlpi "
      "xmlroot xmlserialize xmltable year yes zone";
  const auto reference = scan_with_libpg_query(words);
  REQUIRE(reference.has_value());
  const auto tokens = lex_sql(words);
  REQUIRE(tokens.size() == reference->size());
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    const auto& t = tokens[i];
    INFO("word: ", words.substr(static_cast<std::size_t>(t.start),
                                static_cast<std::size_t>(t.end - t.start)));
    CHECK(t.kind == (*reference)[i].kind);
  }
}

TEST_CASE("lex_sql matches libpg_query on mutated statements that still parse") {
  const auto statements = corpus_statements();
  const char* const fragments[] = {"/* c */",   "-- c\n",  "\n'x'\n'y'", " E'\\'' ", " $q$ ) $q$ ",
                                   " U&\"a\" ", " ::int ", " *-1 ",      " .5 ",     "\"a\"\"b\"",
                                   " $1 ",      " || ",    "(",          ")",        ",",
                                   ".",         " 1e5 ",   " x'0' ",     " <=> ",    " @- "};
  std::mt19937_64 random(20261124);
  auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(random);
  };
  int checked = 0;
  for (int round = 0; round < 4000; ++round) {
    std::string sql = statements[pick(statements.size())];
    const int edits = 1 + static_cast<int>(pick(3));
    for (int e = 0; e < edits; ++e) {
      const std::size_t at = pick(sql.size() + 1);
      sql.insert(at, fragments[pick(std::size(fragments))]);
    }
    checked += check(sql) ? 1 : 0;
  }
  MESSAGE("mutated statements compared: ", checked);
  CHECK(checked > 200);
}
