// Health of the upstream for /health: a TCP connect to PostgreSQL (any of upstream.hosts) every
// interval, run on the HTTP thread's event loop so a probe never waits on a request and a request
// never waits on a probe.
#pragma once

#include <boost/asio/io_context.hpp>
#include <memory>

#include "config/config.hpp"
#include "proxy/observe/status_sources.hpp"

namespace seedproxy::proxy {

class UpstreamProbe {
 public:
  UpstreamProbe(boost::asio::io_context& context, config::Upstream upstream,
                double interval_seconds = 1.0, double timeout_seconds = 1.0);
  ~UpstreamProbe();
  UpstreamProbe(const UpstreamProbe&) = delete;
  UpstreamProbe& operator=(const UpstreamProbe&) = delete;

  // Starts probing (the first probe is immediate). Thread-safe.
  void start();
  // The last probe's result; not ok until the first probe succeeded. Any thread.
  [[nodiscard]] HealthResult result() const;

  struct State;  // public only so the probing coroutine (a free function) can name it

 private:
  std::shared_ptr<State> state_;  // shared with the probing coroutine
};

}  // namespace seedproxy::proxy
