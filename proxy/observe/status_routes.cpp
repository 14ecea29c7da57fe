// Dispatches the metrics port's requests to metrics, health, the status document and the page.
#include "proxy/observe/status_routes.hpp"

#include <exception>

#include "proxy/observe/status_json.hpp"
#include "proxy/observe/status_page.hpp"

namespace seedproxy::proxy {
namespace {

template <class T>
std::vector<T> call(const std::function<std::vector<T>()>& source) {
  if (!source) return {};
  try {
    return source();
  } catch (...) {
    return {};  // the page shows what it can; /metrics logs the failure
  }
}

HttpResponse text(unsigned status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

}  // namespace

StatusRoutes::StatusRoutes(const ProxyStats& stats, StatusSources sources, std::string instance)
    : stats_(stats),
      sources_(sources),
      metrics_(stats, std::move(sources)),
      instance_(std::move(instance)) {}

HealthResult StatusRoutes::health() const {
  if (!sources_.health) return {};
  try {
    return sources_.health();
  } catch (const std::exception& e) {
    return {false, std::string("health check failed: ") + e.what()};
  }
}

HttpResponse StatusRoutes::status() const {
  StatusInputs in;
  in.instance = instance_;
  in.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  in.now_unix_seconds =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  in.health = health();
  in.stats = stats_.snapshot();
  in.seeds = call(sources_.seeds);
  in.thresholds = call(sources_.thresholds);
  in.materializations = call(sources_.materializations);
  HttpResponse response = text(200, status_json(in));
  response.content_type = "application/json";
  return response;
}

HttpResponse StatusRoutes::operator()(const HttpRequest& request) const {
  const std::string_view path = request.path();
  const bool known =
      path == "/" || path == "/metrics" || path == "/health" || path == "/status.json";
  if (!known) return text(404, "not found; try /, /metrics, /health or /status.json\n");
  if (request.method != "GET") {
    HttpResponse response = text(405, "only GET is supported\n");
    response.headers.emplace_back("Allow", "GET");
    return response;
  }
  if (path == "/metrics") {
    HttpResponse response = text(200, metrics_.scrape());
    response.content_type = std::string(metrics_content_type);
    return response;
  }
  if (path == "/health") {
    const HealthResult result = health();
    return result.ok ? text(200, "ok\n") : text(503, result.reason + "\n");
  }
  if (path == "/status.json") return status();
  HttpResponse page = text(200, std::string(status_page_html()));
  page.content_type = "text/html; charset=utf-8";
  return page;
}

}  // namespace seedproxy::proxy
