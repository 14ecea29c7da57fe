// Wires ProxyStats, HttpServer, UpstreamProbe and StatusRoutes together for the server.
#include "proxy/observe/metrics_endpoint.hpp"

#include "proxy/observe/http_server.hpp"
#include "proxy/observe/proxy_stats.hpp"
#include "proxy/observe/status_routes.hpp"
#include "proxy/observe/upstream_probe.hpp"

namespace seedproxy::proxy {

struct MetricsEndpoint::State {
  ProxyStats stats;
  // Set before the HTTP thread starts; the handler only runs on that thread.
  std::unique_ptr<StatusRoutes> routes;
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<UpstreamProbe> probe;
};

MetricsEndpoint::MetricsEndpoint(const config::Endpoint& listen, const config::Upstream& upstream,
                                 StatusSources sources, std::string instance)
    : state_(std::make_unique<State>()) {
  State& state = *state_;
  state.http = std::make_unique<HttpServer>(
      listen, [&state](const HttpRequest& request) { return (*state.routes)(request); });
  state.probe = std::make_unique<UpstreamProbe>(state.http->context(), upstream);
  // The load balancer's question: can PostgreSQL be reached, and then anything the server adds.
  sources.health = [probe = state.probe.get(), extra = std::move(sources.health)] {
    HealthResult result = probe->result();
    if (result.ok && extra) result = extra();
    return result;
  };
  state.routes =
      std::make_unique<StatusRoutes>(state.stats, std::move(sources), std::move(instance));
}

MetricsEndpoint::~MetricsEndpoint() { stop(); }

void MetricsEndpoint::start() {
  state_->probe->start();
  state_->http->start();
}

void MetricsEndpoint::stop() { state_->http->stop(); }

Observer& MetricsEndpoint::observer() noexcept { return state_->stats; }

std::uint16_t MetricsEndpoint::port() const noexcept { return state_->http->port(); }

}  // namespace seedproxy::proxy
