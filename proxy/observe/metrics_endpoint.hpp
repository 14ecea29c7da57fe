// The metrics port as the server runs it: the counting observer the sessions report to, the HTTP
// server with /metrics, /health, /status.json and the status page, and the upstream probe that
// /health combines with the server's own health check.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config/config.hpp"
#include "proxy/observe/observer.hpp"
#include "proxy/observe/status_sources.hpp"

namespace seedproxy::proxy {

class MetricsEndpoint {
 public:
  // Binds `listen` now (throws std::runtime_error naming the address when it cannot); serves
  // from start(). /health fails while the probe cannot reach `upstream`, otherwise answers
  // `sources.health` (if set). The sources are called on the HTTP thread and must stay usable
  // until stop().
  MetricsEndpoint(const config::Endpoint& listen, const config::Upstream& upstream,
                  StatusSources sources, std::string instance);
  ~MetricsEndpoint();  // stop()
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Starts the HTTP thread and the probe.
  void start();
  // Stops serving and joins the HTTP thread; the observer stays usable. Idempotent.
  void stop();

  // What sessions and the server report to; lives as long as this object.
  [[nodiscard]] Observer& observer() noexcept;
  // The bound port (the real one when `listen` asked for 0).
  [[nodiscard]] std::uint16_t port() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace seedproxy::proxy
