// A seed's materialization as operators see it, and the steps it goes through.
//
// SHOW MATERIALIZATIONS, metrics and the status page read MaterializationStatus: the engine fills
// it from the registry and, for the one it runs itself, from the live Materializer. Values only,
// so readers take copies.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rewriter/catalog/seed_set.hpp"

namespace seedproxy::seeds {

// Where a materialization is. Each value is the step being done (persisted before it starts);
// reaching the next value means the previous step completed.
enum class MaterializationStep : std::uint8_t {
  not_started,
  adding_column,
  installing_trigger,
  switching_to_coalesce,  // the resolver must read COALESCE(column, expression)
  backfilling,
  verifying,
  switching_to_column,  // the resolver must read the column
  materialized,
  rolling_back,
  rolled_back,
};

// The step's name where text is read or shown (seedproxy.materializations."step", logs, SHOW
// MATERIALIZATIONS, /status.json); step_from_string() reads it back, nullopt for other text.
[[nodiscard]] std::string_view to_string(MaterializationStep step) noexcept;
[[nodiscard]] std::optional<MaterializationStep> step_from_string(std::string_view text) noexcept;

struct MaterializationStatus {
  std::string database, schema, table, attribute;
  rewriter::Phase phase = rewriter::Phase::virtual_;  // the seed's phase
  MaterializationStep step = MaterializationStep::not_started;
  bool rollback_requested = false;  // ROLLBACK was asked for and no engine has begun it here
  bool paused = false;
  std::uint64_t rows_done = 0;
  std::uint64_t rows_total = 0;  // an estimate (pg_class.reltuples) until the scan ends
  double rows_per_second = 0.0;  // recent rate, 0 while unknown
  double slowdown = 1.0;         // the pauses' multiplier for the clients' latency (running here)
  std::optional<double> eta_seconds;  // absent while the rate is unknown or zero
  std::string owner;                  // the instance materializing it (or that did last)
  std::string error;                  // why the last attempt failed; empty when none
  std::string updated_at;             // when the registry row last changed
  bool running_here = false;          // this proxy's engine runs it now
  // Live proxies that do not serve the seed's newest phase yet: the engine waits for them before
  // it changes the schema. Empty text when it waits for nobody.
  std::size_t waiting_proxies = 0;
  std::string waiting_for;  // "waiting for 1 of 3 proxies: proxy-b (host:port), last seen 4 s ago"

  // At `at`, with no rollback waiting to begin.
  [[nodiscard]] bool at_step(MaterializationStep at) const noexcept {
    return !rollback_requested && step == at;
  }
};

// The step as operators read it: "rollback requested" while a requested rollback waits to begin,
// otherwise the step's name.
[[nodiscard]] std::string_view step_text(const MaterializationStatus& status) noexcept;

}  // namespace seedproxy::seeds
