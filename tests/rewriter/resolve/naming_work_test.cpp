// The names of unaliased select-list items (FigureColname) cost work linear in the statement:
// nested scalar subqueries name each level after the one inside it, and must not name the inner
// levels again at every outer one. Asserted by the resolver's own count of the nodes it examined
// to name columns, not by time.
#include <doctest/doctest.h>

#include <string>

#include "common/fixed_stack.hpp"
#include "rewriter/parse/pg_parser.hpp"
#include "rewriter/resolve/resolver.hpp"

namespace {

using namespace seedproxy::rewriter;

// SELECT (SELECT (… (SELECT id FROM account) …)) FROM account: `depth` nested scalar subqueries.
std::string nested(int depth) {
  std::string sql = "SELECT ";
  for (int i = 0; i < depth; ++i) sql += "(SELECT ";
  sql += "id FROM account";
  for (int i = 0; i < depth; ++i) sql += ")";
  return sql + " FROM account";
}

std::size_t naming_steps(const std::string& sql) {
  const Catalog catalog({{"public", "account", {"id", "balance"}}}, 1);
  std::vector<std::string> errors;
  const auto seeds = SeedSet::compile(
      {{"public", "account", "doubled", "numeric", "balance * 2", Phase::virtual_}}, catalog, 1,
      errors);
  REQUIRE(errors.empty());
  const std::vector<std::string> path{"public"};
  const auto parsed = parse_sql(sql);
  REQUIRE(!parsed.failure);
  const auto& statement = node_at(list_at(parsed.tree.root(), "stmts")[0], "stmt");
  const auto resolution = resolve_statement(statement, {sql, catalog, seeds, path}, parsed.tokens);
  return resolution.naming_steps;
}

}  // namespace

TEST_CASE("naming the columns of nested scalar subqueries is linear in their depth") {
  const std::size_t at_100 = naming_steps(nested(100));
  const std::size_t at_1000 = naming_steps(nested(1000));
  INFO("naming steps: 100 levels " << at_100 << ", 1000 levels " << at_1000);
  CHECK(at_100 > 0);
  // Linear: ten times the levels, about ten times the work (quadratic would be a hundred).
  CHECK(at_1000 <= 12 * at_100);
  CHECK(at_1000 <= 10 * 1000);
}

TEST_CASE("a statement nested past the resolver's limit names no level twice either") {
  // 2000 levels of the resolver's recursion, then naming's: on a stack as large as the proxy's
  // parse thread would give this text, since AddressSanitizer's frames overflow the test's own.
  std::size_t at_3000 = 0;
  REQUIRE(seedproxy::run_on_fixed_stack(256u << 20, [&] { at_3000 = naming_steps(nested(3000)); }));
  CHECK(at_3000 <= 10 * 3000);
}
