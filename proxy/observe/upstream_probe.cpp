// The probing coroutine: resolve, connect with a deadline, record the outcome, sleep, repeat.
#include "proxy/observe/upstream_probe.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <mutex>

#include "common/log.hpp"

namespace seedproxy::proxy {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct UpstreamProbe::State {
  asio::io_context& context;
  config::Upstream upstream;
  std::chrono::steady_clock::duration interval, timeout;
  std::atomic<bool> stopped{false};
  mutable std::mutex mutex;
  HealthResult last{false, "upstream not probed yet"};

  State(asio::io_context& context, config::Upstream upstream,
        std::chrono::steady_clock::duration interval, std::chrono::steady_clock::duration timeout)
      : context(context), upstream(std::move(upstream)), interval(interval), timeout(timeout) {}

  void record(HealthResult result) {
    std::lock_guard lock(mutex);
    last = std::move(result);
  }
};

namespace {

std::chrono::steady_clock::duration seconds(double value) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(value));
}

asio::awaitable<HealthResult> probe_host(UpstreamProbe::State& state,
                                         const config::Endpoint& host) {
  const std::string where = config::endpoint_text(host);
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto [resolve_error, endpoints] =
      co_await resolver.async_resolve(host.host, std::to_string(host.port), use_tuple);
  if (resolve_error) {
    co_return HealthResult{false,
                           "upstream " + where + " cannot be resolved: " + resolve_error.message()};
  }
  tcp::socket socket(executor);
  asio::steady_timer deadline(executor, state.timeout);
  auto outcome = co_await (asio::async_connect(socket, endpoints, use_tuple) ||
                           deadline.async_wait(use_tuple));
  if (outcome.index() == 1) {
    co_return HealthResult{
        false, "upstream " + where + " did not accept a connection within " +
                   log::seconds_text(std::chrono::duration<double>(state.timeout).count())};
  }
  auto [connect_error, connected] = std::get<0>(outcome);
  if (connect_error) {
    co_return HealthResult{
        false, "upstream " + where + " refused the connection: " + connect_error.message()};
  }
  boost::system::error_code ignored;
  socket.close(ignored);
  co_return HealthResult{true, ""};
}

// Healthy while any host accepts connections: sessions try them all.
asio::awaitable<HealthResult> probe_once(UpstreamProbe::State& state) {
  HealthResult failed{false, ""};
  for (const auto& host : state.upstream.hosts) {
    auto result = co_await probe_host(state, host);
    if (result.ok) co_return result;
    if (!failed.reason.empty()) failed.reason += "; ";
    failed.reason += result.reason;
  }
  co_return failed;
}

asio::awaitable<void> probe_loop(std::shared_ptr<UpstreamProbe::State> state) {
  asio::steady_timer pause(state->context);
  while (!state->stopped.load()) {
    state->record(co_await probe_once(*state));
    pause.expires_after(state->interval);
    co_await pause.async_wait(use_tuple);
  }
}

}  // namespace

UpstreamProbe::UpstreamProbe(asio::io_context& context, config::Upstream upstream,
                             double interval_seconds, double timeout_seconds)
    : state_(std::make_shared<State>(context, std::move(upstream), seconds(interval_seconds),
                                     seconds(timeout_seconds))) {}

UpstreamProbe::~UpstreamProbe() { state_->stopped.store(true); }

void UpstreamProbe::start() { asio::co_spawn(state_->context, probe_loop(state_), asio::detached); }

HealthResult UpstreamProbe::result() const {
  std::lock_guard lock(state_->mutex);
  return state_->last;
}

}  // namespace seedproxy::proxy
