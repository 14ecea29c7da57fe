// The Prometheus side: turns the proxy's counters, the seed registry and materialization progress
// into metric families (prometheus-cpp core) and the text exposition format served at /metrics.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <string_view>
#include <vector>

#include "proxy/observe/proxy_stats.hpp"
#include "proxy/observe/status_sources.hpp"

namespace seedproxy::proxy {

// Content-Type of the text exposition format, version 0.0.4.
inline constexpr std::string_view metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

// Every family is built at scrape time: the hot path only ever touches ProxyStats' atomics.
// Thread-safe; sources are called on the scraping thread.
class Metrics final : public prometheus::Collectable {
 public:
  Metrics(const ProxyStats& stats, StatusSources sources);

  [[nodiscard]] std::vector<prometheus::MetricFamily> Collect() const override;
  // The exposition text of Collect().
  [[nodiscard]] std::string scrape() const;

 private:
  const ProxyStats& stats_;
  StatusSources sources_;
};

}  // namespace seedproxy::proxy
