// The drained read over a real loopback connection: what it reads, when it does not try the
// socket first (the end of the stream shows it: it raises no edge of its own), and cancellation.
#include "proxy/io/drained_read.hpp"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <array>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <optional>
#include <string>

namespace asio = boost::asio;
using boost::system::error_code;
using seedproxy::proxy::IoBuffer;
using seedproxy::proxy::ReadInto;
using seedproxy::proxy::RelaySocket;
using tcp = asio::ip::tcp;

namespace {

bool always(std::span<const std::byte>) noexcept { return true; }
bool never(std::span<const std::byte>) noexcept { return false; }

struct Result {
  error_code ec;
  std::size_t n = 0;
};

// A loopback connection: `reader` is the proxy's side, `peer` writes to it.
struct Pair {
  asio::io_context io{1};
  // Keeps run_one_for and poll from stopping the context between reads.
  asio::executor_work_guard<asio::io_context::executor_type> busy{io.get_executor()};
  std::optional<RelaySocket> reader;
  tcp::socket peer{io};
  std::array<std::byte, 64> space{};
  Pair() {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    peer.connect(acceptor.local_endpoint());
    reader.emplace(acceptor.accept(io));
    reader->non_blocking(true);
  }
  void send(const std::string& text) { asio::write(peer, asio::buffer(text)); }
  // Runs the context until `done` holds, or five seconds have passed.
  template <class Done>
  bool run_until(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(10));
    return done();
  }
  // Waits until the reader's side has received the peer's FIN (TCP state CLOSE_WAIT).
  bool wait_for_peer_fin() {
    return run_until([&] {
      tcp_info info{};
      socklen_t size = sizeof info;
      return getsockopt(reader->native_handle(), IPPROTO_TCP, TCP_INFO, &info, &size) == 0 &&
             info.tcpi_state == TCP_CLOSE_WAIT;
    });
  }
  // Starts a read that keeps its outcome in `got`; with `cancel`, bound to that signal.
  void start_read(seedproxy::proxy::TurnEnded turn_ended,
                  asio::cancellation_signal* cancel = nullptr) {
    got.reset();
    const auto keep = [this](error_code ec, std::size_t n) { got = Result{ec, n}; };
    if (cancel) {
      reader->async_read_drained(ReadInto{asio::buffer(space)}, turn_ended,
                                 asio::bind_cancellation_slot(cancel->slot(), keep));
    } else {
      reader->async_read_drained(ReadInto{asio::buffer(space)}, turn_ended, keep);
    }
  }
  // Runs what is ready without waiting; true while the read is still queued.
  bool still_waiting() {
    io.poll();
    return !got;
  }
  // Runs until the read completes (at most five seconds).
  bool completes() {
    return run_until([&] { return got.has_value(); });
  }
  std::string text() const {
    return {reinterpret_cast<const char*>(space.data()), got ? got->n : 0};
  }
  // The last bytes and the end of the stream arrive before the reactor looks (one edge), and a
  // read queued before them takes the bytes; true when all of that happened.
  bool last_words_with_fin(seedproxy::proxy::TurnEnded turn_ended) {
    start_read(turn_ended);
    if (!still_waiting()) return false;
    send("last");
    peer.shutdown(tcp::socket::shutdown_send);
    return wait_for_peer_fin() && completes() && !got->ec && text() == "last";
  }

  std::optional<Result> got;  // the last read's outcome
};

}  // namespace

TEST_CASE("the drained read reads what arrives, also after a read that ended the turn") {
  Pair pair;
  pair.start_read(always);
  CHECK(pair.still_waiting());  // nothing there yet: queued
  pair.send("ready");
  REQUIRE(pair.completes());
  CHECK_FALSE(pair.got->ec);
  CHECK(pair.text() == "ready");
  // The next read waits for the reactor without trying first; the next arrival raises an edge.
  for (const std::string& next : {std::string("more"), std::string(64, 'x')}) {
    pair.start_read(always);
    CHECK(pair.still_waiting());
    pair.send(next);
    REQUIRE(pair.completes());
    CHECK_FALSE(pair.got->ec);
    CHECK(pair.text() == next);
  }
}

TEST_CASE("after a turn's end the next read waits for the reactor; otherwise it tries at once") {
  for (bool trusted : {true, false}) {
    CAPTURE(trusted);
    Pair pair;
    const auto ended = trusted ? &always : &never;
    REQUIRE(pair.last_words_with_fin(ended));
    asio::cancellation_signal cancel;
    pair.start_read(ended, &cancel);
#if !defined(SEEDPROXY_DRAINED_READS)
    // The io_uring build reads with async_read_some: every read is tried.
    trusted = false;
#endif
    if (!trusted) {
      // Tried at once, so the end of the stream is seen without an edge.
      REQUIRE(pair.completes());
      CHECK(pair.got->ec == asio::error::eof);
      continue;
    }
    // Not tried: the FIN raised no edge after the data's, so the read is still queued (which is
    // why only a turn's end, after which a PostgreSQL server never closes in silence, is trusted).
    CHECK(pair.still_waiting());
    CHECK(pair.still_waiting());
    cancel.emit(asio::cancellation_type::terminal);
    REQUIRE(pair.completes());
    CHECK(pair.got->ec == asio::error::operation_aborted);
  }
}

TEST_CASE("a queued drained read ends when its socket closes or the peer resets") {
  for (const bool reset : {false, true}) {
    CAPTURE(reset);
    Pair pair;
    pair.start_read(always);
    REQUIRE(pair.still_waiting());
    if (reset) {
      pair.peer.set_option(asio::socket_base::linger(true, 0));  // close() sends a reset
      pair.peer.close();
    } else {
      pair.reader->close();
    }
    REQUIRE(pair.completes());
    CHECK(pair.got->ec == (reset ? asio::error::connection_reset : asio::error::operation_aborted));
  }
}

#if defined(SEEDPROXY_DRAINED_READS)
TEST_CASE("check_for_end finds an end of the stream that came with the last data") {
  Pair pair;
  REQUIRE(pair.last_words_with_fin(always));
  pair.start_read(always);
  CHECK(pair.still_waiting());  // trusted: the FIN raised no edge of its own
  pair.reader->check_for_end();
  CHECK(pair.still_waiting());  // the first check after a read only counts (a busy peer)
  pair.reader->check_for_end();
  // The waiting read itself completes with what is there: the caller sees an ordinary end.
  REQUIRE(pair.completes());
  CHECK(pair.got->ec == asio::error::eof);
  CHECK(pair.got->n == 0);
}

TEST_CASE("check_for_end with nothing there leaves the read waiting, once per trusted read") {
  Pair pair;
  pair.start_read(always);
  pair.send("first");
  REQUIRE(pair.completes());
  pair.start_read(always);
  for (int i = 0; i < 4; ++i) {
    pair.reader->check_for_end();
    CHECK(pair.still_waiting());
  }
  pair.send("next");
  REQUIRE(pair.completes());
  CHECK_FALSE(pair.got->ec);
  CHECK(pair.text() == "next");
}

TEST_CASE("check_for_end never turns the caller's own cancellation into a read") {
  for (const bool check_first : {false, true}) {
    CAPTURE(check_first);
    Pair pair;
    REQUIRE(pair.last_words_with_fin(always));
    asio::cancellation_signal cancel;
    pair.start_read(always, &cancel);
    pair.reader->check_for_end();
    if (check_first) pair.reader->check_for_end();  // takes the read off the queue first
    cancel.emit(asio::cancellation_type::terminal);
    pair.reader->check_for_end();  // finds the FIN, but no read of its own is waiting any more
    REQUIRE(pair.completes());
    CHECK(pair.got->ec == asio::error::operation_aborted);
    pair.start_read(always);  // the check found the end: the next read tries at once
    REQUIRE(pair.completes());
    CHECK(pair.got->ec == asio::error::eof);
  }
}
#endif

TEST_CASE(
    "a read into a buffer takes storage only when data comes, and keeps none while it waits") {
#if defined(SEEDPROXY_DRAINED_READS)
  constexpr bool takes_at_recv = true;
#else
  // The io_uring build reads with async_read_some: the space is taken when the read starts.
  constexpr bool takes_at_recv = false;
#endif
  Pair pair;
  IoBuffer buffer;
  for (const auto ended : {&never, &always}) {
    // Untrusted: tried at once (nothing there), so storage was taken and given back; trusted:
    // queued without trying. Either way the waiting read holds nothing.
    pair.got.reset();
    pair.reader->async_read_drained(ReadInto{{}, &buffer, false}, ended,
                                    [&](error_code ec, std::size_t n) {
                                      pair.got = Result{ec, n};
                                    });
    CHECK(pair.still_waiting());
    CHECK(buffer.holds_any() == !takes_at_recv);
    pair.send("select 1");
    REQUIRE(pair.completes());
    CHECK_FALSE(pair.got->ec);
    REQUIRE(pair.got->n == 8);
    CHECK(buffer.holds_any());
    CHECK(buffer.unread().empty());  // the caller commits what the completion reports
    buffer.commit(pair.got->n);
    CHECK(std::string(reinterpret_cast<const char*>(buffer.unread().data()), 8) == "select 1");
    buffer.consume(8);
    buffer.release_if_empty();
  }
  // A read that finds the end of the stream gives the storage back too.
  pair.got.reset();
  pair.reader->async_read_drained(ReadInto{{}, &buffer, true}, never,
                                  [&](error_code ec, std::size_t n) {
                                    pair.got = Result{ec, n};
                                  });
  pair.peer.shutdown(tcp::socket::shutdown_send);
  REQUIRE(pair.completes());
  CHECK(pair.got->ec == asio::error::eof);
  CHECK(buffer.holds_any() == !takes_at_recv);
}
