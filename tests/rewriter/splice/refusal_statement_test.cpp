// The stand-in for a refused statement: PostgreSQL fails on its marker at parse analysis, and
// its text (what PostgreSQL logs) says in words what the proxy did and which error the client got.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rewriter/splice/rewriter.hpp"

using namespace seedproxy::rewriter;

TEST_CASE("a refused write is replaced by a comment saying why, then the marker's SELECT") {
  Catalog catalog{{{"public", "account", {"id", "balance"}}}, 1};
  std::vector<std::string> errors;
  const auto seeds =
      SeedSet::compile({{"public", "account", "score", "numeric", "balance * 2", Phase::virtual_}},
                       catalog, 1, errors);
  REQUIRE(errors.empty());
  const std::vector<std::string> path{"public"};
  const std::string sql = "SELECT 1; UPDATE account SET score = 1";
  const auto result = rewrite({sql, catalog, seeds, path, {}});
  REQUIRE(result.outcome == RewriteResult::Outcome::refused);
  const std::string expected_start =
      "SELECT 1; /* seedproxy refused the client's statement here and answered it with ERROR "
      "428C9: column \"score\" can only be updated to DEFAULT (Column \"score\" is a generated "
      "column.). The SELECT after this comment stands in for it";
  CHECK(result.sql.starts_with(expected_start));
  CHECK(result.sql.ends_with("*/ SELECT \"" + result.refusal_marker + "\""));
  CHECK(result.sql.find(" does not exist, is expected and never reaches the client */") !=
        std::string::npos);
}

TEST_CASE("names in the error cannot end the comment") {
  SqlError error;
  error.sqlstate = "428C9";
  error.message = "column \"x*/ DROP TABLE t; /*\" can only be updated to DEFAULT";
  const auto text = refusal_statement("seedproxy refused statement 1", error);
  CHECK(text.find("x* / DROP TABLE t; / *") != std::string::npos);
  CHECK(text.find("*/") == text.rfind("*/"));  // only the comment's own end
  CHECK(text.ends_with("*/ SELECT \"seedproxy refused statement 1\""));
}
