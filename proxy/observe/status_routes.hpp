// The routes of the metrics port: /metrics, /health, /status.json and the status page at /.
#pragma once

#include <chrono>
#include <string>

#include "proxy/observe/http_server.hpp"
#include "proxy/observe/metrics.hpp"
#include "proxy/observe/proxy_stats.hpp"
#include "proxy/observe/status_sources.hpp"

namespace seedproxy::proxy {

class StatusRoutes {
 public:
  // `stats` and the sources must outlive this object (and every HttpServer using it).
  StatusRoutes(const ProxyStats& stats, StatusSources sources, std::string instance);

  // GET only (405 with Allow: GET otherwise); unknown paths are 404.
  [[nodiscard]] HttpResponse operator()(const HttpRequest& request) const;

 private:
  [[nodiscard]] HealthResult health() const;
  [[nodiscard]] HttpResponse status() const;

  const ProxyStats& stats_;
  StatusSources sources_;
  Metrics metrics_;
  std::string instance_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

}  // namespace seedproxy::proxy
