// SocketHandoff over real loopback connections: a socket taken on another context's thread belongs
// to that context and carries the connection; one never taken is closed.
#include "proxy/io/socket_handoff.hpp"

#include <doctest/doctest.h>
#include <poll.h>

#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <future>
#include <optional>
#include <string>
#include <thread>

namespace asio = boost::asio;
using boost::system::error_code;
using seedproxy::proxy::SocketHandoff;
using tcp = asio::ip::tcp;

namespace {

// A client connected to a listener on `accepting`; `accepted` is the accepting side.
struct Connection {
  tcp::socket client;
  seedproxy::proxy::ContextSocket accepted;  // as the server accepts them
  explicit Connection(asio::io_context& accepting) : client(accepting), accepted(accepting) {
    tcp::acceptor acceptor(accepting, {asio::ip::address_v4::loopback(), 0});
    client.connect(acceptor.local_endpoint());
    accepted = acceptor.accept(accepting);
  }
};

}  // namespace

TEST_CASE("a socket handed to another context is registered and served on that context's thread") {
  asio::io_context accepting{1};
  asio::io_context serving{1};
  auto busy = asio::make_work_guard(serving);
  std::thread runner([&] { serving.run(); });
  Connection connection(accepting);
  SocketHandoff handoff(std::move(connection.accepted), serving);
  std::promise<bool> ours;
  // Taken and used on the serving thread: echoes five bytes.
  asio::post(serving, [&, h = std::make_shared<SocketHandoff>(std::move(handoff))] {
    auto socket = h->take();
    ours.set_value(&socket.get_executor().context() == &serving && socket.is_open());
    std::array<char, 5> got{};
    error_code ec;
    asio::read(socket, asio::buffer(got), ec);
    if (!ec) asio::write(socket, asio::buffer(got), ec);
  });
  CHECK(ours.get_future().get());
  asio::write(connection.client, asio::buffer(std::string("hello")));
  std::array<char, 5> echoed{};
  asio::read(connection.client, asio::buffer(echoed));
  CHECK(std::string(echoed.data(), echoed.size()) == "hello");
  busy.reset();
  runner.join();
}

TEST_CASE("a socket handed to its own context is the same socket") {
  asio::io_context context{1};
  Connection connection(context);
  const auto descriptor = connection.accepted.native_handle();
  SocketHandoff handoff(std::move(connection.accepted), context);
  auto socket = handoff.take();
  CHECK(socket.native_handle() == descriptor);
  CHECK(&socket.get_executor().context() == &context);
}

TEST_CASE("a handoff never taken closes the connection") {
  asio::io_context accepting{1};
  asio::io_context serving{1};
  Connection connection(accepting);
  std::optional<SocketHandoff> handoff;
  handoff.emplace(std::move(connection.accepted), serving);
  handoff.reset();
  // Bounded: a descriptor left open would keep the client waiting for ever.
  pollfd readable{connection.client.native_handle(), POLLIN, 0};
  REQUIRE(::poll(&readable, 1, 5000) == 1);
  std::array<char, 1> byte{};
  error_code ec;
  connection.client.read_some(asio::buffer(byte), ec);
  CHECK(ec == asio::error::eof);
}
