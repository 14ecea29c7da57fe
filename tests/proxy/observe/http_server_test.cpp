// The metrics port over real sockets: every route's status and body, limits, keep-alive, and the
// upstream probe behind /health.
#include "proxy/observe/http_server.hpp"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "proxy/observe/status_routes.hpp"
#include "proxy/observe/upstream_probe.hpp"

using namespace seedproxy;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

struct Reply {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
  bool closed = false;  // the server closed the connection after this reply
};

// A blocking HTTP client with a receive timeout, so a broken server fails the test, not hangs it.
class Client {
 public:
  explicit Client(std::uint16_t port) : socket_(context_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
    timeval timeout{5, 0};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  }

  void send(const std::string& bytes) { asio::write(socket_, asio::buffer(bytes)); }

  // Reads one response (Content-Length framed), or what arrives before the server closes.
  Reply receive() {
    Reply reply;
    std::size_t header_end;
    while ((header_end = pending_.find("\r\n\r\n")) == std::string::npos) {
      if (!read_some()) {
        reply.closed = true;
        return reply;
      }
    }
    reply.head = pending_.substr(0, header_end);
    pending_.erase(0, header_end + 4);
    reply.status = std::stoi(reply.head.substr(9, 3));
    std::size_t length = 0;
    if (auto at = lower(reply.head).find("content-length:"); at != std::string::npos) {
      length = std::stoul(reply.head.substr(at + 15));
    }
    while (pending_.size() < length) {
      if (!read_some()) break;
    }
    reply.body = pending_.substr(0, length);
    pending_.erase(0, length);
    return reply;
  }

  // True when the server closed the connection (EOF) before `seconds` passed.
  bool closed_within(double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (!read_some()) return eof_;
    }
    return false;
  }

 private:
  static std::string lower(std::string text) {
    for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return text;
  }
  bool read_some() {
    char buffer[4096];
    boost::system::error_code error;
    std::size_t n;
    do {
      n = socket_.read_some(asio::buffer(buffer), error);
    } while (error == asio::error::interrupted);
    if (error) {
      eof_ = error == asio::error::eof || error == asio::error::connection_reset;
      return false;
    }
    pending_.append(buffer, n);
    return true;
  }

  asio::io_context context_;
  tcp::socket socket_;
  std::string pending_;
  bool eof_ = false;
};

Reply get(std::uint16_t port, const std::string& method, const std::string& target) {
  Client client(port);
  client.send(method + " " + target + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  return client.receive();
}

std::string header(const Reply& reply, const std::string& name) {
  const auto at = reply.head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return {};
  const auto start = at + name.size() + 4;
  return reply.head.substr(start, reply.head.find("\r\n", start) - start);
}

struct Fixture {
  proxy::ProxyStats stats;
  std::mutex mutex;
  proxy::HealthResult health{true, ""};
  std::unique_ptr<proxy::StatusRoutes> routes;
  std::unique_ptr<proxy::HttpServer> server;

  explicit Fixture(proxy::HttpLimits limits = {}) {
    proxy::StatusSources sources;
    sources.seeds = [] {
      seeds::SeedStatus seed;
      seed.database = "shop";
      seed.schema = "public";
      seed.table = "orders";
      seed.attribute = "total";
      seed.type = "numeric";
      seed.phase = rewriter::Phase::materializing;
      seed.reads_in_window = 7;
      return std::vector<seeds::SeedStatus>{seed};
    };
    sources.thresholds = [] {
      return std::vector<proxy::SeedThreshold>{
          {"shop", "public", "orders", "total", config::MaterializePolicy::threshold, 10, 3600}};
    };
    sources.materializations = [] {
      seeds::MaterializationStatus p;
      p.database = "shop";
      p.schema = "public";
      p.table = "orders";
      p.attribute = "total";
      p.phase = rewriter::Phase::materializing;
      p.step = seeds::MaterializationStep::backfilling;
      p.rows_done = 300;
      p.rows_total = 1200;
      p.rows_per_second = 100;
      p.eta_seconds = 9;
      return std::vector<seeds::MaterializationStatus>{p};
    };
    sources.health = [this] {
      std::lock_guard lock(mutex);
      return health;
    };
    stats.client_accepted();
    routes = std::make_unique<proxy::StatusRoutes>(stats, sources, "test-instance");
    server = std::make_unique<proxy::HttpServer>(
        config::Endpoint{"127.0.0.1", 0},
        [this](const proxy::HttpRequest& request) { return (*routes)(request); }, limits);
    server->start();
  }
  ~Fixture() { server->stop(); }
  void set_health(proxy::HealthResult result) {
    std::lock_guard lock(mutex);
    health = std::move(result);
  }
};

}  // namespace

TEST_CASE("GET /metrics serves the text exposition format") {
  Fixture f;
  REQUIRE(f.server->port() != 0);
  const Reply reply = get(f.server->port(), "GET", "/metrics");
  CHECK(reply.status == 200);
  CHECK(header(reply, "Content-Type").rfind("text/plain; version=0.0.4", 0) == 0);
  CHECK(reply.body.find("# TYPE seedproxy_client_connections_total counter") != std::string::npos);
  CHECK(reply.body.find("\nseedproxy_client_connections 1\n") != std::string::npos);
  CHECK(
      reply.body.find(
          R"(seedproxy_materialization_rows_done{attribute="total",database="shop",entity="public.orders"} 300)") !=
      std::string::npos);
}

TEST_CASE("GET /health follows the health source") {
  Fixture f;
  Reply reply = get(f.server->port(), "GET", "/health");
  CHECK(reply.status == 200);
  CHECK(reply.body == "ok\n");
  f.set_health({false, "upstream 127.0.0.1:5432 refused the connection"});
  reply = get(f.server->port(), "GET", "/health");
  CHECK(reply.status == 503);
  CHECK(reply.body == "upstream 127.0.0.1:5432 refused the connection\n");
}

TEST_CASE("GET /status.json describes seeds, materializations and clients") {
  Fixture f;
  const Reply reply = get(f.server->port(), "GET", "/status.json?t=1");
  REQUIRE(reply.status == 200);
  CHECK(header(reply, "Content-Type") == "application/json");
  CHECK(header(reply, "Cache-Control") == "no-store");
  const auto status = nlohmann::json::parse(reply.body);
  CHECK(status["instance"] == "test-instance");
  CHECK(status["health"]["ok"] == true);
  CHECK(status["clients"]["current"] == 1);
  CHECK(status["uptime_seconds"].get<double>() >= 0);
  REQUIRE(status["seeds"].size() == 1);
  CHECK(status["seeds"][0]["entity"] == "public.orders");
  CHECK(status["seeds"][0]["phase"] == "materializing");
  CHECK(status["seeds"][0]["reads_in_window"] == 7);
  CHECK(status["seeds"][0]["threshold"]["reads"] == 10);
  REQUIRE(status["materializations"].size() == 1);
  CHECK(status["materializations"][0]["rows_done"] == 300);
  CHECK(status["materializations"][0]["fraction"].get<double>() == doctest::Approx(0.25));
  CHECK(status["materializations"][0]["eta_seconds"] == 9);
}

TEST_CASE("GET / is a self-contained page that polls /status.json") {
  Fixture f;
  const Reply reply = get(f.server->port(), "GET", "/");
  CHECK(reply.status == 200);
  CHECK(header(reply, "Content-Type") == "text/html; charset=utf-8");
  CHECK(reply.body.find("<title>seedproxy</title>") != std::string::npos);
  CHECK(reply.body.find("status.json") != std::string::npos);
  // No external assets: no stylesheet or script links and no absolute URLs.
  CHECK(reply.body.find("<link") == std::string::npos);
  CHECK(reply.body.find("src=") == std::string::npos);
  CHECK(reply.body.find("http://") == std::string::npos);
  CHECK(reply.body.find("https://") == std::string::npos);
  CHECK(reply.body.find("innerHTML") == std::string::npos);
}

TEST_CASE("unknown paths are 404 and other methods 405") {
  Fixture f;
  CHECK(get(f.server->port(), "GET", "/nope").status == 404);
  const Reply post = get(f.server->port(), "POST", "/metrics");
  CHECK(post.status == 405);
  CHECK(header(post, "Allow") == "GET");
  CHECK(get(f.server->port(), "DELETE", "/").status == 405);
}

TEST_CASE("an oversized request is refused and the connection closed") {
  Fixture f;
  Client client(f.server->port());
  client.send("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + std::string(20000, 'a') +
              "\r\n\r\n");
  const Reply reply = client.receive();
  CHECK(reply.status == 431);
  CHECK(client.closed_within(5));

  Client body(f.server->port());
  // The declared length alone is refused; the client need not send the body.
  body.send("GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
            std::string(100, 'b'));
  CHECK(body.receive().status == 413);
}

TEST_CASE("keep-alive serves several requests, then an idle connection is closed") {
  proxy::HttpLimits limits;
  limits.idle_timeout_seconds = 0.3;
  Fixture f(limits);
  Client client(f.server->port());
  for (int i = 0; i < 3; ++i) {
    client.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    const Reply reply = client.receive();
    CHECK(reply.status == 200);
    CHECK(reply.body == "ok\n");
  }
  CHECK(client.closed_within(5));
}

TEST_CASE("garbage is answered with 400") {
  Fixture f;
  Client client(f.server->port());
  client.send("NOT HTTP AT ALL\r\n\r\n");
  CHECK(client.receive().status == 400);
}

TEST_CASE("at max_connections a newcomer replaces the connection idle the longest") {
  proxy::HttpLimits limits;
  limits.max_connections = 2;
  Fixture f(limits);
  Client a(f.server->port()), b(f.server->port());
  // Make sure both are accepted (and counted) before the third arrives; a is idle the longest.
  a.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(a.receive().status == 200);
  b.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(b.receive().status == 200);
  Client c(f.server->port());
  c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(c.receive().status == 200);
  CHECK(a.closed_within(5));
  b.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(b.receive().status == 200);
}

TEST_CASE("/health answers while max_connections silent connections are open (issue 14)") {
  Fixture f;  // the default limits: 64 connections, 10 s to send a request
  std::vector<std::unique_ptr<Client>> silent;
  for (int i = 0; i < 64; ++i) silent.push_back(std::make_unique<Client>(f.server->port()));
  for (int round = 0; round < 3; ++round) {
    const Reply reply = get(f.server->port(), "GET", "/health");
    CHECK(reply.status == 200);
    CHECK(reply.body == "ok\n");
  }
  // And again after twice as many more silent ones.
  for (int i = 0; i < 128; ++i) silent.push_back(std::make_unique<Client>(f.server->port()));
  CHECK(get(f.server->port(), "GET", "/health").status == 200);
}

TEST_CASE("the upstream probe reports a listening and a closed upstream") {
  asio::io_context context;
  tcp::acceptor listening(context, {asio::ip::make_address("127.0.0.1"), 0});
  const std::uint16_t open_port = listening.local_endpoint().port();
  std::uint16_t closed_port;
  {
    tcp::acceptor temporary(context, {asio::ip::make_address("127.0.0.1"), 0});
    closed_port = temporary.local_endpoint().port();
  }
  const auto upstream = [](std::vector<config::Endpoint> hosts) {
    config::Upstream out;
    out.hosts = std::move(hosts);
    return out;
  };
  proxy::UpstreamProbe up(context, upstream({{"127.0.0.1", open_port}}), 0.05, 1.0);
  proxy::UpstreamProbe down(context, upstream({{"127.0.0.1", closed_port}}), 0.05, 1.0);
  // Several hosts: healthy while any one accepts (sessions try them all).
  proxy::UpstreamProbe second_up(
      context, upstream({{"127.0.0.1", closed_port}, {"127.0.0.1", open_port}}), 0.05, 1.0);
  CHECK_FALSE(up.result().ok);  // not probed yet
  up.start();
  down.start();
  second_up.start();
  std::thread runner([&context] { context.run_for(std::chrono::seconds(10)); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline &&
         (!up.result().ok || !second_up.result().ok ||
          down.result().reason == "upstream not probed yet")) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling with a deadline
  }
  context.stop();
  runner.join();
  CHECK(up.result().ok);
  CHECK(second_up.result().ok);
  CHECK_FALSE(down.result().ok);
  CHECK(down.result().reason.find("refused") != std::string::npos);
}
