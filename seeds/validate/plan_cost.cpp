// EXPLAIN's estimate of a query, read from the top plan node's "(cost=a..b rows=n …)".
#include "seeds/validate/plan_cost.hpp"

#include <charconv>
#include <variant>

namespace seedproxy::seeds {

namespace {

[[nodiscard]] std::optional<double> number_after(std::string_view line, std::string_view mark) {
  const auto at = line.find(mark);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = line.data() + at + mark.size();
  double value = 0;
  const auto [end, error] = std::from_chars(begin, line.data() + line.size(), value);
  if (error != std::errc{} || end == begin) return std::nullopt;
  return value;
}

}  // namespace

std::optional<PlanCost> parse_plan_line(std::string_view line) {
  const auto cost = line.rfind("(cost=");  // last: a quoted relation name may hold the text
  if (cost == std::string_view::npos) return std::nullopt;
  const auto rest = line.substr(cost);
  const auto total = number_after(rest, "..");
  const auto rows = number_after(rest, " rows=");
  if (!total || !rows || *total < 0 || *rows < 0) return std::nullopt;
  return PlanCost{*total, *rows};
}

std::optional<PlanCost> estimate(ControlConnection& connection, const std::string& select) {
  auto answer = connection.try_query("EXPLAIN " + select);
  const auto* result = std::get_if<Result>(&answer);
  if (!result || PQntuples(result->get()) < 1) return std::nullopt;
  return parse_plan_line(text_at(*result, 0, 0));
}

}  // namespace seedproxy::seeds
