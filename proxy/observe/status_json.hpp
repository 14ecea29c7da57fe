// The document behind /status.json and the status page: seeds, materializations, clients, health.
#pragma once

#include <string>
#include <vector>

#include "proxy/observe/proxy_stats.hpp"
#include "proxy/observe/status_sources.hpp"

namespace seedproxy::proxy {

struct StatusInputs {
  std::string instance;
  double uptime_seconds = 0;
  double now_unix_seconds = 0;
  HealthResult health;
  ProxyStats::Snapshot stats;
  std::vector<seeds::SeedStatus> seeds;
  std::vector<SeedThreshold> thresholds;
  std::vector<seeds::MaterializationStatus> materializations;
};

// A JSON object; field names are documented in docs/metrics.md.
[[nodiscard]] std::string status_json(const StatusInputs& inputs);

}  // namespace seedproxy::proxy
