// Reading the planner's estimate from EXPLAIN's top line, without a database.
#include "seeds/validate/plan_cost.hpp"

#include <doctest/doctest.h>

using seedproxy::seeds::parse_plan_line;

TEST_CASE("EXPLAIN's top line gives total cost and rows") {
  const auto scan = parse_plan_line("Seq Scan on account  (cost=0.00..35.50 rows=2550 width=4)");
  REQUIRE(scan.has_value());
  CHECK(scan->total == doctest::Approx(35.5));
  CHECK(scan->rows == doctest::Approx(2550));
  const auto big = parse_plan_line(
      "Seq Scan on \"t (cost=1..2 rows=3)\"  (cost=625000.03..625035.53 rows=2550 width=8)");
  REQUIRE(big.has_value());  // a table name that looks like an estimate is not read as one
  CHECK(big->total == doctest::Approx(625035.53));
  CHECK(big->rows == doctest::Approx(2550));
  const auto exponent = parse_plan_line("Result  (cost=1e+06..1.5e+06 rows=1 width=8)");
  REQUIRE(exponent.has_value());
  CHECK(exponent->total == doctest::Approx(1.5e6));
}

TEST_CASE("other text gives no estimate") {
  CHECK_FALSE(parse_plan_line(""));
  CHECK_FALSE(parse_plan_line("Seq Scan on account"));
  CHECK_FALSE(parse_plan_line("(cost=0.00..x rows=1)"));
  CHECK_FALSE(parse_plan_line("(cost=0.00..1.00 rows=)"));
  CHECK_FALSE(parse_plan_line("(cost=0.00..-1.00 rows=1)"));
}
