// The names of the materialization steps, and of a materialization's state as operators read it.
#include "seeds/materialize/progress.hpp"

#include <array>

namespace seedproxy::seeds {
namespace {

constexpr std::array<std::string_view, 10> step_names{
    "not_started",  "adding_column", "installing_trigger",  "switching_to_coalesce",
    "backfilling",  "verifying",     "switching_to_column", "materialized",
    "rolling_back", "rolled_back"};

}  // namespace

std::string_view to_string(MaterializationStep step) noexcept {
  return step_names[static_cast<std::size_t>(step)];
}

std::optional<MaterializationStep> step_from_string(std::string_view text) noexcept {
  for (std::size_t i = 0; i < step_names.size(); ++i)
    if (step_names[i] == text) return static_cast<MaterializationStep>(i);
  return std::nullopt;
}

std::string_view step_text(const MaterializationStatus& status) noexcept {
  return status.rollback_requested ? "rollback requested" : to_string(status.step);
}

}  // namespace seedproxy::seeds
