// A small HTTP/1.1 server (Boost.Beast) on its own thread and event loop for /metrics, /health and
// the status page: bounded requests, idle keep-alive connections closed, never on an I/O thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"

namespace seedproxy::proxy {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as sent, e.g. "/status.json?x=1"
  [[nodiscard]] std::string_view path() const noexcept {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
  }
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Allow
};

// Called on the HTTP thread for every complete request; must not block for long (it delays every
// other HTTP client, never the proxy). An exception becomes a 500.
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpLimits {
  std::size_t max_header_bytes = 8 * 1024;  // request line + headers; larger: 431 and close
  std::size_t max_body_bytes = 1024;        // the routes take no body; larger: 413 and close
  double request_timeout_seconds = 10.0;    // to receive one whole request once it started
  double idle_timeout_seconds = 5.0;        // keep-alive connection without a new request
  std::size_t max_connections = 64;         // further connections are closed at once
};

class HttpServer {
 public:
  // Binds and listens now (port 0: any free port); throws std::runtime_error naming the address
  // when it cannot. Serving starts with start().
  HttpServer(const config::Endpoint& endpoint, HttpHandler handler, HttpLimits limits = {});
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the HTTP thread.
  void start();
  // Stops accepting, drops open HTTP connections and joins the thread. Idempotent.
  void stop();

  // The bound port (the real one when the endpoint asked for 0).
  [[nodiscard]] std::uint16_t port() const noexcept;
  // The HTTP thread's event loop, for background work that belongs with it (e.g. a health probe).
  [[nodiscard]] boost::asio::io_context& context() noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace seedproxy::proxy
