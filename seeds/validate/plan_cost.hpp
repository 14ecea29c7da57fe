// The planner's estimate for a query (EXPLAIN's top node: total cost and rows), for judging what
// a seed's expression adds to a read of its table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

struct PlanCost {
  double total = 0;  // in the planner's units (seq_page_cost = 1)
  double rows = 0;
};

// Reads "… (cost=0.00..35.50 rows=2550 width=4)" (EXPLAIN's first line); nullopt for other text.
[[nodiscard]] std::optional<PlanCost> parse_plan_line(std::string_view line);

// EXPLAIN of `select` on `connection` (it is planned, not run). nullopt when the server refuses
// it or answers something unreadable.
[[nodiscard]] std::optional<PlanCost> estimate(ControlConnection& connection,
                                               const std::string& select);

}  // namespace seedproxy::seeds
