// A session over real loopback sockets against a fake PostgreSQL that logs any client in: once it
// idles, its pumps are only their pending reads, whose handlers own nothing. Destroying the I/O
// context then must still free the session, through the relay wait of the session's coroutine that
// owns it (an ownership cycle would leak it: the SessionList keeps the proof, ASan the details).
#include <doctest/doctest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/session/session.hpp"

namespace asio = boost::asio;
using seedproxy::proxy::Session;
using seedproxy::proxy::SessionList;
using seedproxy::proxy::SessionSettings;
using seedproxy::proxy::UpstreamHost;
using tcp = asio::ip::tcp;

namespace {

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(value >> shift));
}

std::vector<std::uint8_t> startup_message() {
  static constexpr char parameters[] = "user\0alice\0database\0shop\0";  // and the final NUL
  std::vector<std::uint8_t> message;
  put_u32(message, static_cast<std::uint32_t>(4 + 4 + sizeof parameters));
  put_u32(message, 196608);  // protocol 3.0
  for (const char c : parameters) message.push_back(static_cast<std::uint8_t>(c));
  return message;
}

// AuthenticationOk, then ReadyForQuery (idle).
constexpr std::array<std::uint8_t, 15> logged_in = {'R', 0,   0, 0, 8, 0, 0,  0,
                                                    0,   'Z', 0, 0, 0, 5, 'I'};

// PostgreSQL's side of a login: the startup packet read, the client let in.
asio::awaitable<void> fake_server(tcp::acceptor& acceptor, tcp::socket& backend) {
  backend = co_await acceptor.async_accept(asio::use_awaitable);
  std::array<std::uint8_t, 4> length{};
  co_await asio::async_read(backend, asio::buffer(length), asio::use_awaitable);
  std::vector<std::uint8_t> rest(((std::size_t{length[2]} << 8) | length[3]) - 4);
  co_await asio::async_read(backend, asio::buffer(rest), asio::use_awaitable);
  co_await asio::async_write(backend, asio::buffer(logged_in), asio::use_awaitable);
}

// The client's side: its startup packet, then what the proxy relays back.
asio::awaitable<void> client_logs_in(tcp::socket& client, bool& in) {
  const auto startup = startup_message();
  co_await asio::async_write(client, asio::buffer(startup), asio::use_awaitable);
  std::array<std::uint8_t, logged_in.size()> answer{};
  co_await asio::async_read(client, asio::buffer(answer), asio::use_awaitable);
  in = answer == logged_in;
}

}  // namespace

TEST_CASE("a context destroyed while a session idles on its reads frees the session") {
  SessionList list;
  {
    asio::io_context io(1);
    const tcp::endpoint loopback(asio::ip::address_v4::loopback(), 0);
    tcp::acceptor proxy_side(io, loopback);
    tcp::acceptor server_side(io, loopback);
    tcp::socket client(io);
    tcp::socket backend(io);
    client.connect(proxy_side.local_endpoint());
    tcp::socket accepted = proxy_side.accept();

    auto settings = std::make_shared<SessionSettings>();
    settings->upstream.push_back(UpstreamHost{
        "fake", "127.0.0.1", std::vector<tcp::endpoint>{server_side.local_endpoint()}});
    asio::co_spawn(
        io,
        [](tcp::socket socket, std::shared_ptr<const SessionSettings> session_settings,
           SessionList& sessions) -> asio::awaitable<void> {
          Session session(std::move(socket), std::move(session_settings), sessions, 1);
          co_await session.run();
        }(std::move(accepted), settings, list),
        asio::detached);
    asio::co_spawn(io, fake_server(server_side, backend), asio::detached);
    bool in = false;
    asio::co_spawn(io, client_logs_in(client, in), asio::detached);

    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!in && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(100));
    REQUIRE(in);
    io.poll();  // the pumps back on their reads: the session idles
    CHECK(list.sessions.size() == 1);
    // Leaving the scope closes the test's sockets (no handler runs) and destroys the context
    // with both of the session's reads and run's relay wait pending.
  }
  CHECK(list.sessions.empty());
}
