// One seed's materialization as operators see it (SHOW MATERIALIZATIONS, metrics, the status
// page): the engine fills it from the registry and, for the one it runs itself, from the live
// Materializer. Values only, so readers take copies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace seedproxy::seeds {

struct MaterializationStatus {
  std::string database, schema, table, attribute;
  std::string phase;  // the seed's phase: virtual, materializing, materialized, rolled_back
  std::string step;   // the engine's step (materializer.hpp), e.g. "backfilling"
  bool paused = false;
  std::uint64_t rows_done = 0;
  std::uint64_t rows_total = 0;       // an estimate (pg_class.reltuples) until the scan ends
  double rows_per_second = 0.0;       // recent rate, 0 while unknown
  std::optional<double> eta_seconds;  // absent while the rate is unknown or zero
  std::string owner;                  // the instance materializing it (or that did last)
  std::string error;                  // why the last attempt failed; empty when none
  std::string updated_at;             // when the registry row last changed
  bool running_here = false;          // this proxy's engine runs it now
};

}  // namespace seedproxy::seeds
