// Refusing a client: encryption requests declined, then one FATAL ErrorResponse, then close.
#include "proxy/server/refusal.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/session/session.hpp"
#include "proxy/wire/frame_codec.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<void> refuse_client(ContextSocket socket, std::string_view sqlstate,
                                    std::string message, double patience_seconds) {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  constexpr std::uint32_t ssl_request = 80877103, gssenc_request = 80877104;
  asio::steady_timer deadline(socket.get_executor());
  deadline.expires_after(seconds(patience_seconds));
  // At most one SSLRequest and one GSSENCRequest come before the startup packet.
  for (int round = 0; round < 2; ++round) {
    std::array<std::byte, 8> head{};
    auto ready = co_await (socket.async_wait(tcp::socket::wait_read, use_tuple) ||
                           deadline.async_wait(use_tuple));
    if (ready.index() == 1) break;
    boost::system::error_code ec;
    const auto n = socket.receive(asio::buffer(head), tcp::socket::message_peek, ec);
    if (ec || n < head.size()) break;
    const auto length = protocol::read_u32(head, 0), code = protocol::read_u32(head, 4);
    if (length != 8 || (code != ssl_request && code != gssenc_request)) break;
    auto [read_ec, read] = co_await asio::async_read(socket, asio::buffer(head), use_tuple);
    if (read_ec) co_return;
    const std::array<std::byte, 1> no{std::byte{'N'}};
    auto [write_ec, written] = co_await asio::async_write(socket, asio::buffer(no), use_tuple);
    if (write_ec) co_return;
  }
  const auto bytes =
      protocol::error_response({protocol::Severity::fatal, sqlstate, message, {}, {}});
  co_await asio::async_write(socket, asio::buffer(bytes), use_tuple);
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
}

}  // namespace seedproxy::proxy
