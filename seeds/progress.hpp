// Progress of one materialization as the engine reports it, for metrics, logs and the status page.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace seedproxy::seeds {

// A snapshot of one running (or just finished) materialization. The engine fills it; readers take
// copies, so it holds values only.
struct MaterializationProgress {
  std::string database, schema, table, attribute;
  std::string phase;  // the seed's phase while materializing, e.g. "backfilling"
  std::uint64_t rows_done = 0;
  std::uint64_t rows_total = 0;       // an estimate (pg_class.reltuples) until the scan ends
  double rows_per_second = 0.0;       // recent rate, not the average since the start
  std::optional<double> eta_seconds;  // absent while the rate is unknown or zero
};

}  // namespace seedproxy::seeds
