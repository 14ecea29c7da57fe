// ServerPool over real loopback connections: a parked connection is handed out under its key
// only while the peer (standing in for PostgreSQL) has said nothing and kept it open; the pool's
// limits and timeouts let backends go, and what it does is counted for the metrics.
#include "proxy/pool/server_pool.hpp"

#include <doctest/doctest.h>

#include <array>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <string>

#include "proxy/observe/proxy_stats.hpp"

namespace asio = boost::asio;
using seedproxy::proxy::ContextSocket;
using seedproxy::proxy::ProxyStats;
using seedproxy::proxy::ServerPool;
using seedproxy::proxy::Stream;
using tcp = asio::ip::tcp;

namespace {

// A connection whose far end the test holds as "PostgreSQL".
struct Backend {
  tcp::socket postgres;
  ContextSocket proxy_side;
  explicit Backend(asio::io_context& context) : postgres(context), proxy_side(context) {
    tcp::acceptor acceptor(context, {asio::ip::address_v4::loopback(), 0});
    proxy_side.connect(acceptor.local_endpoint());
    postgres = acceptor.accept();
  }
  ServerPool::Server server(std::string database = "db",
                            ServerPool::Clock::time_point born = ServerPool::Clock::now()) {
    return {Stream(std::move(proxy_side)), {std::byte{'Z'}}, 42, born, "app", std::move(database)};
  }
};

seedproxy::config::ServerPool settings() {
  seedproxy::config::ServerPool s;
  s.enabled = true;
  return s;
}

// What the far end reads until the proxy side closes: the Terminate a let-go backend is sent.
std::string read_to_end(tcp::socket& socket) {
  std::string out;
  std::array<char, 64> chunk{};
  boost::system::error_code ec;
  while (!ec) {
    const auto n = socket.read_some(asio::buffer(chunk), ec);
    out.append(chunk.data(), n);
  }
  return out;
}

}  // namespace

TEST_CASE("a parked backend is handed out under its key, once") {
  asio::io_context context;
  ProxyStats stats;
  ServerPool pool(context.get_executor(), stats);
  Backend backend(context);
  CHECK(pool.park("key", backend.server(), settings()) == nullptr);
  CHECK(pool.size() == 1);
  CHECK_FALSE(pool.take("other", settings()));
  auto taken = pool.take("key", settings());
  REQUIRE(taken);
  CHECK(taken->backend_pid == 42);
  CHECK(taken->login == std::vector<std::byte>{std::byte{'Z'}});
  // The stream still carries the connection.
  asio::write(taken->stream.socket(), asio::buffer(std::string("Q")));
  std::array<char, 1> got{};
  asio::read(backend.postgres, asio::buffer(got));
  CHECK(got[0] == 'Q');
  CHECK_FALSE(pool.take("key", settings()));
  const auto counted = stats.snapshot();
  CHECK(counted.servers_parked == 1);
  CHECK(counted.servers_reused == 1);
  CHECK(counted.servers_parked_now() == 0);
}

TEST_CASE("a backend that spoke or closed while parked is never handed out") {
  asio::io_context context;
  ProxyStats stats;
  ServerPool pool(context.get_executor(), stats);
  Backend spoke(context), closed(context);
  REQUIRE(pool.park("key", spoke.server(), settings()) == nullptr);
  REQUIRE(pool.park("key", closed.server(), settings()) == nullptr);
  // PostgreSQL's FATAL before it closes, and a plain close.
  asio::write(spoke.postgres, asio::buffer(std::string("E")));
  closed.postgres.close();
  CHECK_FALSE(pool.take("key", settings()));
  CHECK(pool.size() == 0);
  CHECK(stats.snapshot().servers_let_go == 2);
  CHECK(read_to_end(spoke.postgres) == std::string("X\0\0\0\4", 5));  // told to end
}

TEST_CASE("limits: max_idle, lifetime_seconds, and a pool turned off") {
  asio::io_context context;
  ProxyStats stats;
  ServerPool pool(context.get_executor(), stats);
  auto s = settings();
  s.max_idle = 1;
  s.lifetime_seconds = 60;
  Backend first(context), second(context), old(context);
  CHECK(pool.park("a", first.server(), s) == nullptr);
  const char* full = pool.park("a", second.server(), s);
  REQUIRE(full != nullptr);
  CHECK(std::string(full).find("max_idle") != std::string::npos);
  CHECK(read_to_end(second.postgres) == std::string("X\0\0\0\4", 5));
  s.max_idle = 10;
  const char* aged =
      pool.park("a", old.server("db", ServerPool::Clock::now() - std::chrono::minutes(2)), s);
  REQUIRE(aged != nullptr);
  CHECK(std::string(aged).find("lifetime_seconds") != std::string::npos);
  // Turned off by a reload: what is parked is not handed out.
  s.enabled = false;
  CHECK_FALSE(pool.take("a", s));
  CHECK(stats.snapshot().servers_parked_now() == 0);
}

TEST_CASE("a parked backend is let go after idle_timeout_seconds, and by KILL of its database") {
  asio::io_context context;
  ProxyStats stats;
  ServerPool pool(context.get_executor(), stats);
  auto s = settings();
  s.idle_timeout_seconds = 0.05;
  Backend idle(context), killed(context), kept(context);
  REQUIRE(pool.park("a", idle.server(), s) == nullptr);
  s.idle_timeout_seconds = 600;
  REQUIRE(pool.park("b", killed.server("gone"), s) == nullptr);
  REQUIRE(pool.park("c", kept.server(), s) == nullptr);
  pool.drop_database("gone");
  CHECK(pool.size() == 2);
  CHECK(read_to_end(killed.postgres) == std::string("X\0\0\0\4", 5));
  // The sweep runs on the context: run it until the idle one is gone, bounded.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (pool.size() > 1 && std::chrono::steady_clock::now() < deadline)
    context.run_one_for(std::chrono::milliseconds(100));
  CHECK(pool.size() == 1);
  CHECK(read_to_end(idle.postgres) == std::string("X\0\0\0\4", 5));
  const auto described = pool.describe();
  REQUIRE(described.size() == 1);
  CHECK(described[0].database == "db");
  CHECK(described[0].user == "app");
  CHECK(described[0].backend_pid == 42);
  CHECK(stats.snapshot().servers_let_go == 2);
}
