// parse_sql's stack budget: the deepest text a session may send parses without touching the
// caller's stack, larger texts are refused with 54001, and ordinary ones behave as before.
#include <doctest/doctest.h>

#include <string>

#include "rewriter/parse/pg_parser.hpp"

namespace {

using seedproxy::rewriter::max_parse_bytes;
using seedproxy::rewriter::parse_on_caller_stack_bytes;
using seedproxy::rewriter::parse_sql;

// `SELECT a+1+1+…` of about `bytes` bytes: a left-deep tree, one level per two bytes, the most
// stack per byte libpg_query's JSON writer spends.
std::string chain(std::size_t bytes) {
  std::string sql = "SELECT a";
  while (sql.size() + 2 <= bytes) sql += "+1";
  return sql;
}

}  // namespace

TEST_CASE("a 1 MiB left-deep expression parses on a stack sized for it") {
  // 524,000 levels: about 64 MiB of parser stack, eight times what this thread has.
  const auto parsed = parse_sql(chain(1u << 20));
  REQUIRE_FALSE(parsed.failure);
  CHECK(parsed.tree.root().contains("stmts"));
}

TEST_CASE("70,000 terms, as in issue 14, parse") { CHECK_FALSE(parse_sql(chain(140'017)).failure); }

TEST_CASE("a text over max_parse_bytes is refused with 54001, unparsed") {
  const auto parsed = parse_sql(chain(max_parse_bytes + 2));
  REQUIRE(parsed.failure);
  CHECK(parsed.failure->sqlstate == "54001");
  CHECK(parsed.failure->message == "stack depth limit exceeded");
}

TEST_CASE("syntax errors keep PostgreSQL's message and no SQLSTATE, on either stack") {
  for (const std::size_t bytes : {std::size_t{64}, parse_on_caller_stack_bytes * 4}) {
    const auto parsed = parse_sql(chain(bytes) + " FROM WHERE");
    REQUIRE(parsed.failure);
    CHECK(parsed.failure->sqlstate.empty());
    CHECK(parsed.failure->message == "syntax error at or near \"WHERE\"");
  }
}

TEST_CASE("texts around the caller-stack threshold give the same tree") {
  const auto below = chain(parse_on_caller_stack_bytes);
  const auto above = below + "+1";
  REQUIRE_FALSE(parse_sql(below).failure);
  REQUIRE_FALSE(parse_sql(above).failure);
  CHECK(parse_sql(above).tokens.size() == parse_sql(below).tokens.size() + 2);
}
