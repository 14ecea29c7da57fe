// A session over real loopback sockets against a fake PostgreSQL that logs any client in: once it
// idles, its pumps are only their pending reads, whose handlers own nothing, and no coroutine of
// the session is left. Its SessionList owns it: the session frees itself when its connection is
// over, and the list frees it when the list goes first (before the I/O context, as the server's
// workers order them). A leak or a double free shows here; ASan gives the details.
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

// A proxy-side socket, a fake server and a client, all on one context.
struct Rig {
  asio::io_context io{1};
  tcp::acceptor proxy_side{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  tcp::acceptor server_side{io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)};
  tcp::socket client{io};
  tcp::socket backend{io};
  std::shared_ptr<SessionSettings> settings = std::make_shared<SessionSettings>();

  // Starts a session in `list` for the client, and runs until the client is logged in and the
  // session idles on its reads.
  bool log_in(SessionList& list) {
    client.connect(proxy_side.local_endpoint());
    tcp::socket accepted = proxy_side.accept();
    settings->upstream.push_back(UpstreamHost{
        "fake", "127.0.0.1", std::vector<tcp::endpoint>{server_side.local_endpoint()}});
    Session::start(std::move(accepted), settings, list, 1);
    asio::co_spawn(io, fake_server(server_side, backend), asio::detached);
    bool in = false;
    asio::co_spawn(io, client_logs_in(client, in), asio::detached);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!in && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(100));
    io.poll();  // the pumps back on their reads: the session idles
    return in;
  }
};

}  // namespace

TEST_CASE("a session list destroyed while its session idles on its reads frees the session") {
  std::weak_ptr<SessionSettings> settings_seen;
  int ended = 0;
  {
    Rig rig;
    SessionList list;  // after the context: destroyed first, as in the server's workers
    list.on_end = [&ended] { ++ended; };
    REQUIRE(rig.log_in(list));
    CHECK(list.sessions.size() == 1);
    settings_seen = rig.settings;
    rig.settings.reset();
    CHECK_FALSE(settings_seen.expired());  // the session holds them
    // Leaving the scope frees the session with both of its reads pending, then destroys the
    // context with their handlers.
  }
  CHECK(settings_seen.expired());
  CHECK(ended == 0);  // freed by the list, not ended by itself
}

TEST_CASE("a session whose client leaves frees itself and tells its list once") {
  Rig rig;
  SessionList list;
  int ended = 0;
  list.on_end = [&ended] { ++ended; };
  REQUIRE(rig.log_in(list));
  REQUIRE(list.sessions.size() == 1);
  const std::weak_ptr<SessionSettings> settings_seen = rig.settings;
  rig.settings.reset();
  rig.client.close();  // the client goes: the pumps end, then the session
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ended == 0 && std::chrono::steady_clock::now() < deadline)
    rig.io.run_one_for(std::chrono::milliseconds(100));
  CHECK(ended == 1);
  CHECK(list.sessions.empty());
  CHECK(settings_seen.expired());
  rig.io.poll();
  CHECK(ended == 1);
}
