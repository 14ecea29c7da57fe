// Accept loop and per-connection coroutine of the HTTP server: parse with limits, call the
// handler, write, keep alive until idle. At max_connections a newcomer takes the place of the
// connection that has waited longest for a request, so silent sockets cannot lock out /health.
#include "proxy/observe/http_server.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <exception>
#include <list>
#include <stdexcept>
#include <thread>

#include "common/log.hpp"
#include "seedproxy_version.hpp"

namespace seedproxy::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct HttpServer::State {
  HttpHandler handler;
  HttpLimits limits;
  // Declared before the context: destroying the context destroys suspended connection
  // coroutines, whose destructors still count down `connections`.
  std::atomic<std::size_t> connections{0};
  // Connections waiting for their next request, oldest first (HTTP thread only); an evicted one
  // stays listed as null until its coroutine takes it out.
  std::list<beast::tcp_stream*> waiting;
  bool stopped = false;
  bool stopping = false;  // HTTP thread only: stop() asked the accept loop to end
  bool accepting = true;  // HTTP thread only: until accept_loop() has returned
  asio::io_context context{1};
  tcp::acceptor acceptor{context};
  std::thread thread;

  // Closes the connection that has waited longest for a request; false when none waits.
  bool evict_oldest_waiting();

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(tcp::socket socket);
  HttpResponse respond(const http::request<http::string_body>& request);
};

namespace {

std::chrono::steady_clock::duration seconds(double value) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(value));
}

HttpResponse plain(unsigned status, std::string body) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

http::response<http::string_body> to_beast(HttpResponse response, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> out{static_cast<http::status>(response.status), version};
  out.set(http::field::server, std::string("seedproxy/") + seedproxy::version_string);
  out.set(http::field::content_type, response.content_type);
  for (auto& [name, value] : response.headers) out.set(name, value);
  out.body() = std::move(response.body);
  out.keep_alive(keep_alive);
  out.prepare_payload();
  return out;
}

}  // namespace

HttpResponse HttpServer::State::respond(const http::request<http::string_body>& request) {
  HttpRequest view{std::string(request.method_string()), std::string(request.target())};
  try {
    return handler(view);
  } catch (const std::exception& e) {
    log::error("http", "handler for " + view.method + " " + view.target + " failed: " + e.what());
  } catch (...) {
    log::error("http", "handler for " + view.method + " " + view.target + " failed");
  }
  return plain(500, "internal error\n");
}

asio::awaitable<void> HttpServer::State::serve(tcp::socket socket) {
  struct Slot {  // the connection counts against max_connections until this coroutine ends
    std::atomic<std::size_t>& count;
    ~Slot() { count.fetch_sub(1, std::memory_order_relaxed); }
  } slot{connections};

  beast::tcp_stream stream(std::move(socket));
  // Room for one maximal request; a larger one fails the read instead of growing the buffer.
  beast::flat_buffer buffer(limits.max_header_bytes + limits.max_body_bytes);
  bool first = true;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    // The first request gets the request timeout; later ones must start within the idle timeout.
    stream.expires_after(
        seconds(first ? limits.request_timeout_seconds : limits.idle_timeout_seconds));
    first = false;
    // Listed while it waits, so a newcomer at max_connections may close it (evict_oldest_waiting).
    const auto listed = waiting.insert(waiting.end(), &stream);
    auto [read_error, read_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
    waiting.erase(listed);
    if (read_error) {
      // Answer what deserves an answer; timeouts and closed peers just end the connection.
      std::optional<HttpResponse> refusal;
      if (read_error == http::error::header_limit || read_error == http::error::buffer_overflow) {
        refusal = plain(431, "request header too large\n");
      } else if (read_error == http::error::body_limit) {
        refusal = plain(413, "request body too large\n");
      } else if (read_error.category() == make_error_code(http::error::bad_target).category() &&
                 read_error != http::error::end_of_stream &&
                 read_error != http::error::partial_message) {
        refusal = plain(400, "bad request\n");
      }
      if (refusal) {
        stream.expires_after(seconds(limits.request_timeout_seconds));
        auto response = to_beast(std::move(*refusal), 11, false);
        co_await http::async_write(stream, response, use_tuple);
      }
      break;
    }
    const auto& request = parser.get();
    const bool keep_alive = request.keep_alive();
    auto response = to_beast(respond(request), request.version(), keep_alive);
    stream.expires_after(seconds(limits.request_timeout_seconds));
    auto [write_error, written] = co_await http::async_write(stream, response, use_tuple);
    if (write_error || !keep_alive) break;
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.socket().close(ignored);
}

bool HttpServer::State::evict_oldest_waiting() {
  for (auto it = waiting.begin(); it != waiting.end(); ++it) {
    if (!*it) continue;
    boost::system::error_code ignored;
    // Cancelled, not closed: its read ends with operation_aborted and serve() closes the socket
    // with nothing in flight (Boost 1.81's io_uring backend frees a closed socket's operation
    // queues even with the read still in the kernel, see stop()).
    (*it)->socket().cancel(ignored);
    *it = nullptr;  // evicted: never picked twice
    return true;
  }
  return false;
}

asio::awaitable<void> HttpServer::State::accept_loop() {
  struct Ended {  // however the loop ends: stop() then stops the context itself
    State& state;
    ~Ended() {
      state.accepting = false;
      if (state.stopping) state.context.stop();
    }
  } ended{*this};
  for (;;) {
    auto [error, socket] = co_await acceptor.async_accept(use_tuple);
    if (stopping || error == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (error) {
      // E.g. out of descriptors: keep serving the connections we have.
      log::warning("http", "accept failed: " + error.message());
      continue;
    }
    if (connections.fetch_add(1, std::memory_order_relaxed) >= limits.max_connections &&
        !evict_oldest_waiting()) {
      connections.fetch_sub(1, std::memory_order_relaxed);
      boost::system::error_code ignored;
      socket.close(ignored);
      continue;
    }
    asio::co_spawn(context, serve(std::move(socket)), asio::detached);
  }
}

HttpServer::HttpServer(const config::Endpoint& endpoint, HttpHandler handler, HttpLimits limits)
    : state_(std::make_unique<State>()) {
  state_->handler = std::move(handler);
  state_->limits = limits;
  const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
  boost::system::error_code error;
  tcp::resolver resolver(state_->context);
  auto results =
      resolver.resolve(endpoint.host, std::to_string(endpoint.port), tcp::resolver::passive, error);
  if (error || results.empty()) {
    throw std::runtime_error("metrics: cannot resolve " + where + ": " + error.message());
  }
  const tcp::endpoint address = results.begin()->endpoint();
  auto& acceptor = state_->acceptor;
  acceptor.open(address.protocol(), error);
  if (!error) acceptor.set_option(tcp::acceptor::reuse_address(true), error);
  if (!error) acceptor.bind(address, error);
  if (!error) acceptor.listen(asio::socket_base::max_listen_connections, error);
  if (error) {
    throw std::runtime_error("metrics: cannot listen on " + where + ": " + error.message());
  }
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
  if (state_->thread.joinable() || state_->stopped) return;
  asio::co_spawn(state_->context, state_->accept_loop(), asio::detached);
  state_->thread = std::thread([state = state_.get()] {
    try {
      state->context.run();
    } catch (const std::exception& e) {
      log::error("http", std::string("HTTP thread stopped: ") + e.what());
    }
  });
}

// The context stops only once the accept loop has seen its accept come back (cancelled): in the
// io_uring build of Boost 1.81, closing an acceptor frees its operation queues even with the
// accept still in the kernel, and a context stopped before that completion is handled leaves the
// accept there, for the context's destructor to destroy after the socket service (a
// heap-use-after-free under ASan, docs/benchmarks.md, "The io_uring build loses sessions"). The
// acceptor is closed after the thread has ended, with nothing in flight.
void HttpServer::stop() {
  if (state_->stopped) return;
  state_->stopped = true;
  if (state_->thread.joinable()) {
    asio::post(state_->context, [state = state_.get()] {
      state->stopping = true;
      boost::system::error_code ignored;
      state->acceptor.cancel(ignored);
      if (!state->accepting) state->context.stop();
    });
    state_->thread.join();
  }
  boost::system::error_code ignored;
  state_->acceptor.close(ignored);
}

std::uint16_t HttpServer::port() const noexcept {
  boost::system::error_code error;
  auto local = state_->acceptor.local_endpoint(error);
  return error ? 0 : local.port();
}

boost::asio::io_context& HttpServer::context() noexcept { return state_->context; }

}  // namespace seedproxy::proxy
