// A session over real loopback sockets against a fake PostgreSQL that logs any client in: once it
// idles, its pumps are only their pending reads, whose handlers own nothing, and no coroutine of
// the session is left. Its SessionList owns it: the session frees itself when its connection is
// over, and the list frees it when the list goes first (before the I/O context, as the server's
// workers order them). The client pump's coroutine (a write the server does not take, the
// catalog) may be the last of the relay to end; the session must free the pumps only after it.
// A leak, a double free or a use after free shows here; ASan gives the details.
#include <doctest/doctest.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "proxy/session/session.hpp"
#include "tests/proxy/session/fake_snapshots.hpp"

namespace asio = boost::asio;
using seedproxy::proxy::ContextSocket;
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

// Everything the client hears until its connection ends.
asio::awaitable<void> client_hears(tcp::socket& client, std::string& heard, bool& over) {
  std::array<char, 4096> chunk{};
  for (;;) {
    auto [ec, n] =
        co_await client.async_read_some(asio::buffer(chunk), asio::as_tuple(asio::use_awaitable));
    heard.append(chunk.data(), n);
    if (ec) break;
  }
  over = true;
}

// The session's end of the connection to `backend` (its server socket), found among the
// process's descriptors by its endpoints: how much of what the proxy wrote the server has not
// acknowledged yet.
class ProxySide {
 public:
  explicit ProxySide(const tcp::socket& backend) {
    const auto local = backend.remote_endpoint();
    const auto peer = backend.local_endpoint();
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
      const int fd = std::stoi(entry.path().filename().string());
      if (endpoint_of(fd, &getsockname) == local && endpoint_of(fd, &getpeername) == peer) {
        fd_ = fd;
        break;
      }
    }
    REQUIRE(fd_ >= 0);
  }
  [[nodiscard]] std::size_t unacknowledged() const {
    int queued = 0;
    if (ioctl(fd_, SIOCOUTQ, &queued) != 0) FAIL("SIOCOUTQ failed on the session's server socket");
    return static_cast<std::size_t>(queued);
  }

 private:
  static tcp::endpoint endpoint_of(int fd, int (*name)(int, sockaddr*, socklen_t*)) {
    tcp::endpoint endpoint;
    socklen_t length = static_cast<socklen_t>(endpoint.capacity());
    if (name(fd, endpoint.data(), &length) != 0) return {};
    endpoint.resize(length);
    return endpoint;
  }
  int fd_ = -1;
};

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
    ContextSocket accepted = proxy_side.accept(io);
    settings->upstream.push_back(UpstreamHost{
        "fake", "127.0.0.1", std::vector<tcp::endpoint>{server_side.local_endpoint()}});
    Session::start(std::move(accepted), settings, list, 1);
    asio::co_spawn(io, fake_server(server_side, backend), asio::detached);
    bool in = false;
    asio::co_spawn(io, client_logs_in(client, in), asio::detached);
    run_until([&in] { return in; });
    io.poll();  // the pumps back on their reads: the session idles
    return in;
  }

  // Runs handlers until `done` holds (looked at after each one) or ten seconds pass.
  template <class Done>
  bool run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(100));
    return done();
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
  rig.run_until([&ended] { return ended > 0; });
  CHECK(ended == 1);
  CHECK(list.sessions.empty());
  CHECK(settings_seen.expired());
  rig.io.poll();
  CHECK(ended == 1);
}

TEST_CASE("a server that goes while the client pump's coroutine writes to it ends the session") {
  Rig rig;
  SessionList list;
  int ended = 0;
  list.on_end = [&ended] { ++ended; };
  REQUIRE(rig.log_in(list));
  const std::weak_ptr<SessionSettings> settings_seen = rig.settings;
  rig.settings.reset();
  const ProxySide proxy_side(rig.backend);
  const auto read_before = list.counters.bytes_from_clients.get();

  // The server reads nothing more: the proxy's write of this Query (32 MiB, far more than the
  // sockets between the proxy and the server hold) stops once they are full, and the client
  // pump's coroutine waits to write the rest.
  const auto query = seedproxy::test::query(std::string(std::size_t{32} << 20, 'x'));
  bool sent = false;
  asio::async_write(rig.client, asio::buffer(query),
                    [&sent](boost::system::error_code, std::size_t) { sent = true; });
  std::string heard;
  bool heard_all = false;
  asio::co_spawn(rig.io, client_hears(rig.client, heard, heard_all), asio::detached);
  // Every byte the proxy wrote is in the server's receive queue or still queued on the proxy's
  // side: more read from the client than that is held by the pump, waiting in its coroutine.
  REQUIRE(rig.run_until([&] {
    const auto read = list.counters.bytes_from_clients.get() - read_before;
    return read > rig.backend.available() + proxy_side.unacknowledged();
  }));
  CHECK_FALSE(sent);

  SUBCASE("the server shuts its side: only the pumps' cancellation ends the client's write") {
    // The server pump reads the end and ends first; the client pump's write would wait for ever
    // (the server still takes nothing) if the cancellation did not reach it.
    rig.backend.shutdown(tcp::socket::shutdown_send);
  }
  SUBCASE("the server closes with the Query unread: the connection is reset under both pumps") {
    // Both pumps fail in one wake-up of the reactor, which decides their order (the epoll
    // reactor completes the write first: here the client pump's coroutine ends first).
    rig.backend.close();
  }
  REQUIRE(rig.run_until([&] { return ended > 0 && heard_all && sent; }));
  CHECK(ended == 1);
  CHECK(list.sessions.empty());
  CHECK(settings_seen.expired());
  // The client hears why before its connection closes: a FATAL ErrorResponse, 08006.
  REQUIRE_FALSE(heard.empty());
  CHECK(heard.front() == 'E');
  CHECK(heard.find("C08006") != std::string::npos);
  rig.io.poll();
  CHECK(ended == 1);
}

TEST_CASE(
    "a server that goes while the client pump's coroutine waits for the catalog ends the session") {
  // No snapshot of the database yet: the client's first statement waits for it (bounded by
  // Session::wait_for_catalog, two seconds) in the client pump's coroutine.
  constexpr auto catalog_bound = std::chrono::seconds(2);
  seedproxy::test::FakeSnapshots snapshots("shop");
  Rig rig;
  SessionList list;
  int ended = 0;
  list.on_end = [&ended] { ++ended; };
  rig.settings->snapshots = &snapshots;
  REQUIRE(rig.log_in(list));
  const std::weak_ptr<SessionSettings> settings_seen = rig.settings;
  rig.settings.reset();

  std::string heard;
  bool heard_all = false;
  asio::write(rig.client, asio::buffer(seedproxy::test::query("SELECT 1")));
  asio::co_spawn(rig.io, client_hears(rig.client, heard, heard_all), asio::detached);
  REQUIRE(rig.run_until([&snapshots] { return snapshots.waits > 0; }));
  CHECK(snapshots.waits == 1);

  // The server pump reads the end and ends first; the pumps' cancellation ends the catalog wait
  // long before its bound.
  const auto gone = std::chrono::steady_clock::now();
  rig.backend.shutdown(tcp::socket::shutdown_send);
  REQUIRE(rig.run_until([&] { return ended > 0 && heard_all; }));
  CHECK(std::chrono::steady_clock::now() - gone < catalog_bound);
  CHECK(ended == 1);
  CHECK(list.sessions.empty());
  CHECK(settings_seen.expired());
  CHECK(snapshots.unwatches == snapshots.watches);  // the session stopped following the database
  REQUIRE_FALSE(heard.empty());
  CHECK(heard.front() == 'E');
  CHECK(heard.find("C08006") != std::string::npos);
  rig.io.poll();
  CHECK(ended == 1);
}
