// CancelRequest forwarding over a short-lived upstream connection, bounded by a deadline.
#include "proxy/session/cancel.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <string>

#include "common/log.hpp"
#include "proxy/session/session.hpp"
#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

asio::awaitable<bool> send_cancel_to(const std::vector<std::byte>& packet, const UpstreamHost& host,
                                     double timeout_seconds) {
  const auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  asio::steady_timer deadline(executor);
  deadline.expires_after(seconds(timeout_seconds));
  auto outcome = co_await (asio::async_connect(socket, host.endpoints, use_tuple) ||
                           deadline.async_wait(use_tuple));
  if (outcome.index() == 1 || std::get<0>(std::get<0>(outcome))) co_return false;
  auto [ec, written] = co_await asio::async_write(socket, asio::buffer(packet), use_tuple);
  co_return !ec;
}

// The key names a backend on whichever host the session reached; every host gets the packet
// (PostgreSQL ignores a key that names none of its backends).
asio::awaitable<void> send_cancel(std::vector<std::byte> packet,
                                  std::shared_ptr<const SessionSettings> settings) {
  const std::uint32_t pid = protocol::read_u32(packet, 8);
  std::string failed;
  std::size_t sent = 0;
  for (const auto& host : settings->upstream) {
    const bool ok = co_await send_cancel_to(packet, host, settings->connect_timeout_seconds);
    if (ok) ++sent;
    if (ok) continue;
    if (!failed.empty()) failed += ", ";
    failed += host.name;
  }
  if (sent == 0) {
    log::warning("cancel", "could not reach upstream " + failed + " to cancel backend " +
                               std::to_string(pid));
    co_return;
  }
  log::info("cancel", "forwarded cancel request for backend " + std::to_string(pid));
}

}  // namespace

void forward_cancel(const asio::any_io_executor& executor, std::vector<std::byte> packet,
                    std::shared_ptr<const SessionSettings> settings) {
  asio::co_spawn(executor, send_cancel(std::move(packet), std::move(settings)), asio::detached);
}

}  // namespace seedproxy::proxy
