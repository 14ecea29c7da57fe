// Where metrics, /health and the status page get the control plane's state: callbacks the server
// fills in, each cheap and non-blocking, called on the HTTP thread at scrape or poll time.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "seeds/materialize/progress.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::proxy {

// The read threshold that triggers materialization of one seed, as configured.
struct SeedThreshold {
  std::string database, schema, table, attribute;
  config::MaterializePolicy policy = config::MaterializePolicy::threshold;
  std::uint64_t reads = 0;
  std::uint64_t window_seconds = 0;
};

struct HealthResult {
  bool ok = true;
  std::string reason;  // why not, when !ok; a sentence for the load balancer's log
};

// Any member may be empty: the corresponding metrics and status fields are then left out (and
// an empty `health` means healthy).
struct StatusSources {
  std::function<std::vector<seeds::SeedStatus>()> seeds;
  std::function<std::vector<seeds::MaterializationStatus>()> materializations;
  std::function<std::vector<SeedThreshold>()> thresholds;
  std::function<HealthResult()> health;
};

// Thresholds of the configured seeds (entities folded like the registry folds them).
[[nodiscard]] std::vector<SeedThreshold> thresholds_from_config(
    const std::vector<config::SeedSpec>& seeds);

// "schema.table", the `entity` label of every per-seed metric.
[[nodiscard]] std::string entity_label(std::string_view schema, std::string_view table);

}  // namespace seedproxy::proxy
