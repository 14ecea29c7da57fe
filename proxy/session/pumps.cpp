// The two relay pumps. Each direction reads and relays in completion handlers for as long as
// nothing has to wait, and spawns a coroutine only for what must: a write the peer's socket
// cannot take at once, a DDL seed's verdict, the database's catalog. A transaction that needs
// none of these (nearly all of them) costs no coroutine resumption, no awaitable frame and no
// relay coroutine per read, and an idle session holds no pump coroutine at all.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <utility>

#include "common/log.hpp"
#include "proxy/session/session.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/frontend_views.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using Kind = protocol::RelayScanner::Kind;

// The bytes up to `ready` are relayed; a message cut short gets room to arrive whole.
void settle(IoBuffer& buffer, const protocol::RelayScanner::Step& last, std::size_t ready) {
  buffer.consume(ready);
  if (last.kind == Kind::need_more) buffer.ensure_capacity(last.length);
}

}  // namespace

Session::Direction Session::direction(bool client) noexcept {
  if (client) {
    return Direction{.from = client_,
                     .to = server_,
                     .buffer = client_buffer_,
                     .scanner = from_client_,
                     .dropping = dropping_from_client_,
                     .backlog = client_backlog_,
                     .filled = client_filled_,
                     .stopping = client_pump_stopping_};
  }
  return Direction{.from = server_,
                   .to = client_,
                   .buffer = server_buffer_,
                   .scanner = from_server_,
                   .dropping = dropping_from_server_,
                   .backlog = server_backlog_,
                   .filled = server_filled_,
                   .stopping = server_pump_stopping_};
}

// The completion handler of every read and TLS wait of one pump: relays what arrived and reads
// on, or hands what the pump must do to after_turns. Two words: while the session idles, each
// pump is only its pending read with this handler, no coroutine frame. The read owns nothing (the
// SessionList owns the session and frees it, before the context, if the context stops first).
// Reads are cancelled through the socket (pump_ended) and the pump's stop flag, looked at after
// every read.
struct Session::Turn {
  Session* session;
  bool client;

  void operator()(const error_code& ec, std::size_t n) { go(ec, n, false); }
  void operator()(const error_code& ec) { go(ec, 0, true); }

 private:
  void go(const error_code& ec, std::size_t n, bool tls_wait) {
    Session* owner = session;
    const bool from_client = client;
    auto stop = owner->turn(from_client, ec, n, tls_wait);
    if (stop) {
      owner->after_turns(from_client, std::move(*stop));
      return;
    }
    try {
      owner->read_on(std::move(*this));
    } catch (...) {
      // Room for the read could not be had: the pump ends with it, never out of the I/O thread.
      owner->stop_settled(from_client, std::current_exception(), false);
    }
  }
};

void Session::pump_ended(int which, Ending ending, std::exception_ptr failure) {
  auto& pumps = *pumps_;
  if (pumps.ending) return;
  // The first to end ends the session: the others are cancelled, whatever they wait for. The
  // flags catch a read that had already completed when the cancel came.
  pumps.ending = std::make_unique<Ending>(std::move(ending));
  pumps.failure = std::move(failure);
  if (which != 0) {
    client_pump_stopping_ = true;
    pumps.cancel_client_pump.emit(asio::cancellation_type::terminal);
    client_.cancel();  // its read, if it reads
  }
  if (which != 1) {
    // What the server's pump waits for (a read of the server, a write to the client).
    server_pump_stopping_ = true;
    server_.cancel();
    client_.cancel();
  }
  if (login_) login_->deadline.cancel();
}

void Session::one_less() {
  if (--pumps_->running > 0) return;
  // after_relay starts from a handler of its own: co_spawn would run it at once, inside the
  // completion that ended the last pump, and its relay_over frees the pumps' cancellation signal,
  // to which that completion (the client pump's coroutine) may be bound. Boost 1.81 touches the
  // signal no more after that point (session_teardown_test drives this order and passes either
  // way); the post keeps the teardown out of another operation's completion all the same.
  try {
    asio::post(client_.get_executor(), [this] {
      try {
        spawn(after_relay());
      } catch (...) {
        end_without_memory();
      }
    });
  } catch (...) {
    end_without_memory();
  }
}

void Session::end_without_memory() {
  log::error("session", "session " + std::to_string(id_) +
                            " ended without a word to the client: no memory to end it in");
  pumps_.reset();
  finish(Ending{});
  free_if_over();
}

void Session::start_relay() {
  // A database is followed (its registry read, its catalog loaded) only once a backend has
  // started there for this client: on_server_message enables it at the first ReadyForQuery.
  // The pumps say why they ended through pump_ended, from ordinary functions: an Ending (or the
  // text it is made of) kept in a frame would stay allocated for the whole session.
  pumps_ = std::make_unique<Pumps>();
  server_pump_stopping_ = false;
  client_pump_stopping_ = false;
  // What earlier pumps could not write went with them (to a backend now left, as a rule).
  client_backlog_.reset();
  server_backlog_.reset();
  if (!authenticated_) {
    // The login deadline, a sibling of the pumps: ends the session if the client has not
    // authenticated by then (relay mode: PostgreSQL's exchange passes through the pumps).
    ++pumps_->running;
    login_->deadline.async_wait([this](error_code ec) {
      if (!ec && !authenticated_) pump_ended(-1, login_timeout(), nullptr);
      one_less();  // timed out, logged in, or the pumps ended first
    });
  }
  pumps_->running += 2;
  start_pump(true);
  start_pump(false);
}

Session::Ending Session::relay_over() {
  const std::unique_ptr<Pumps> pumps = std::move(pumps_);
  server_pump_stopping_ = false;  // nothing relays now: later writes to the client go ahead
  client_pump_stopping_ = false;
  if (pumps->failure) std::rethrow_exception(pumps->failure);
  return pumps->ending ? std::move(*pumps->ending) : Ending{};
}

std::optional<Session::PumpStop> Session::turn(bool client, const error_code& ec, std::size_t n,
                                               bool tls_wait) {
  try {
    auto stop = tls_wait ? after_tls_wait(client, ec) : after_read(client, ec, n);
    if (!stop && direction(client).stopping) stop = PumpStop::told_to_stop();
    return stop;
  } catch (...) {
    // Not out of the I/O thread's run(): the pump's coroutine rethrows it, as before.
    PumpStop stop;
    stop.failure = std::current_exception();
    return stop;
  }
}

void Session::read_on(Turn&& turn) {
  const bool client = turn.client;
  const Direction way = direction(client);
  if (way.from.tls()) {
    way.from.async_tls_wait(std::move(turn));
    return;
  }
  // The read takes its storage from the buffer only when it calls recv: while it waits for the
  // peer, an empty buffer holds none.
  if (!way.filled) way.buffer.release_if_empty();
  // After a Query or a Sync the client waits for the answer, after a ReadyForQuery the server
  // waits for the client: the next read waits for epoll without trying the socket first
  // (drained_read.hpp; the end watch looks for a FIN).
  TurnEnded ends = &protocol::ends_with_ready_for_query;
  if (client)
    ends = client_buffer_.unread().empty() && from_client_.at_boundary()
               ? &protocol::ends_client_turn
               : &RelaySocket::never;
  way.from.socket().async_read_drained(ReadInto{{}, &way.buffer, way.filled}, ends,
                                       std::move(turn));
}

void Session::start_pump(bool client) {
  if (direction(client).stopping) {
    stop_settled(client, nullptr, false);  // another ended first: it says why
    return;
  }
  try {
    Turn turn{this, client};
    Stream& from = direction(client).from;
    if (from.tls() && from.buffered()) {
      // OpenSSL holds bytes already: read them from a handler, never from here (a coroutine
      // that restarts the pump must not relay inside itself).
      asio::post(from.get_executor(), [turn]() mutable { turn(error_code{}); });
      return;
    }
    read_on(std::move(turn));
  } catch (...) {
    stop_settled(client, std::current_exception(), false);
  }
}

std::optional<Session::PumpStop> Session::after_read(bool client, const error_code& ec,
                                                     std::size_t n) {
  if (ec) return PumpStop::read_failed(ec);
  return take_bytes(client, n);
}

std::optional<Session::PumpStop> Session::after_tls_wait(bool client, const error_code& ec) {
  if (ec) return PumpStop::read_failed(ec);
  const Direction way = direction(client);
  // Everything OpenSSL can decrypt now, a record at a time, until it needs the socket.
  for (;;) {
    if (way.stopping) return PumpStop::told_to_stop();
    if (!way.filled) way.buffer.release_if_empty();
    const auto space = way.buffer.writable(way.filled);
    error_code read_ec;
    const std::size_t n = way.from.read_some(space, read_ec);
    if (read_ec == asio::error::would_block) {
      way.buffer.release_if_empty();  // nothing held while the pump waits
      return std::nullopt;
    }
    if (read_ec) return PumpStop::read_failed(read_ec);
    if (auto stop = take_bytes(client, n)) return stop;
  }
}

std::optional<Session::PumpStop> Session::take_bytes(bool client, std::size_t n) {
  const Direction way = direction(client);
  way.buffer.commit(n);
  way.filled = way.buffer.full();
  if (client) {
    list_.counters.bytes_from_clients.add(n);
    if (!authenticated_) client_spoke_ = true;  // the backend it goes to is the only one now
    if (rewriting_ && rewriting_->must_wait(client_buffer_.unread(), from_client_.at_boundary()))
      return PumpStop::needs_catalog();
  } else {
    list_.counters.bytes_from_server.add(n);
  }
  const Relayed relayed = client ? relay_client() : relay_server();
  if (relayed.must_wait() || relay_failed(client, relayed)) return PumpStop::after(relayed);
  return std::nullopt;
}

bool Session::relay_failed(bool client, const Relayed& relayed) const {
  if (relayed.write_error || relayed.last.kind == Kind::error) return true;
  return !client && standby_check_ && standby_check_->refused();
}

void Session::after_turns(bool client, PumpStop stop) {
  if (!stop.catalog && !stop.relayed.must_wait()) {
    // The pump's end, as a rule: decided here, no coroutine.
    std::exception_ptr failure;
    bool go_on = false;
    try {
      go_on = settle_stop(client, stop);
    } catch (...) {
      failure = std::current_exception();
    }
    stop_settled(client, std::move(failure), go_on);
    return;
  }
  try {
    // A coroutine for the wait; it lives only until the pump reads on. The client's waits (the
    // catalog, a DDL seed's verdict, a write to the server) are cancelled through the pumps'
    // signal; the server's only wait is a write to the client, cancelled through the socket.
    const auto settled = [this, client](std::exception_ptr failure, bool go_on) {
      stop_settled(client, std::move(failure), go_on);
    };
    if (client) {
      asio::co_spawn(client_.get_executor(), after_stop(true, std::move(stop)),
                     asio::bind_cancellation_slot(pumps_->cancel_client_pump.slot(), settled));
    } else {
      asio::co_spawn(client_.get_executor(), after_stop(false, std::move(stop)), settled);
    }
  } catch (...) {
    stop_settled(client, std::current_exception(), false);
  }
}

bool Session::settle_stop(bool client, const PumpStop& stop) {
  if (stop.failure) std::rethrow_exception(stop.failure);
  if (stop.stopping) return false;  // the pump that ended first says why
  if (stop.read_error) {
    if (client) {
      client_read_failed(stop.read_error);
    } else {
      server_read_failed(stop.read_error);
    }
    return false;
  }
  if (!relay_failed(client, stop.relayed)) return true;
  if (client) {
    client_relay_failed(stop.relayed);
  } else {
    server_relay_failed(stop.relayed);
  }
  return false;
}

asio::awaitable<bool> Session::after_stop(bool client, PumpStop stop) {
  if (stop.catalog) {
    co_await wait_for_catalog();
    stop.relayed = relay_client();
  }
  if (stop.relayed.must_wait()) stop.relayed = co_await finish_relay(client, stop.relayed);
  co_return settle_stop(client, stop);
}

void Session::stop_settled(bool client, std::exception_ptr failure, bool go_on) {
  if (go_on) {
    start_pump(client);
    return;
  }
  if (failure) pump_ended(client ? 0 : 1, {}, std::move(failure));
  one_less();
}

asio::awaitable<Session::Relayed> Session::finish_relay(bool client, Relayed relayed) {
  const Direction way = direction(client);
  while (relayed.must_wait()) {
    if (relayed.backlog) {
      const auto ec = co_await write_rest(way.to, *way.backlog);
      way.backlog.reset();
      relayed.backlog = false;
      relayed.write_error = ec;
      if (ec) co_return relayed;
    }
    if (!relayed.rest.empty()) {
      relayed.write_error = co_await write_rest(way.to, relayed.rest);
      if (relayed.write_error) co_return relayed;
      relayed.rest = {};
      settle(way.buffer, relayed.last, relayed.ready);
    }
    if (relayed.ddl_wait) {
      // The DDL seed's verdict, then the message is decided again and the walk goes on.
      co_await ddl_seeds_->wait();
      const auto again = relayed.last;
      relayed = client ? relay_client(&again) : relay_server(&again);
    }
  }
  co_return relayed;
}

void Session::emit(Stream& to, protocol::Bytes bytes,
                   std::unique_ptr<std::vector<std::byte>>& backlog, error_code& ec) {
  if (ec) return;
  if (!backlog || backlog->empty()) {
    const std::size_t before = bytes.size();
    if (wrote_at_once(to, bytes, ec)) return;
    // A message may be cut: an ending spliced into it would garble the client's stream.
    if (&to == &client_ && bytes.size() < before) client_write_interrupted_ = true;
  }
  if (!backlog) backlog = std::make_unique<std::vector<std::byte>>();
  backlog->insert(backlog->end(), bytes.begin(), bytes.end());
}

template <class Started, class Inspect, class Head>
Session::Relayed Session::relay(Direction way, Started started, Inspect inspect, Head head,
                                const protocol::RelayScanner::Step* again) {
  Relayed out;
  auto& scanner = way.scanner;
  Stream& to = way.to;
  const auto unread = way.buffer.unread();
  std::size_t flushed = 0;  // bytes already written, replaced or dropped
  std::size_t ready = 0;    // bytes decided so far
  while (ready < unread.size() && !out.write_error) {
    if (again) {
      out.last = *again;  // scanned, and its start seen, before the wait
    } else {
      const bool starts = scanner.at_boundary();
      out.last = scanner.next(unread.subspan(ready));
      if (starts && out.last.kind != Kind::need_more && out.last.kind != Kind::error)
        started(out.last.header.type);
    }
    if (out.last.kind == Kind::head || (out.last.kind == Kind::pass && way.dropping)) {
      auto verdict = out.last.kind == Kind::head
                         ? head(out.last.header, unread.subspan(ready, out.last.length))
                         : HeadVerdict{{}, true};
      if (!verdict.before.empty() || verdict.drop) {
        if (ready > flushed)
          emit(to, unread.subspan(flushed, ready - flushed), way.backlog, out.write_error);
        flushed = ready;
        if (!verdict.before.empty()) emit(to, verdict.before, way.backlog, out.write_error);
        if (verdict.drop) flushed = ready + out.last.length;
      }
      way.dropping = verdict.drop && !scanner.at_boundary();
      ready += out.last.length;
      continue;
    }
    if (out.last.kind == Kind::message) {
      auto replacement = inspect(out.last.header, unread.subspan(ready, out.last.length));
      if (!again && &to == &server_ && ddl_seeds_ && ddl_seeds_->waiting()) {
        // A DDL seed is being registered: what went before goes on, this message waits for the
        // verdict (finish_relay) and is then decided again.
        if (ready > flushed)
          emit(to, unread.subspan(flushed, ready - flushed), way.backlog, out.write_error);
        flushed = ready;
        out.ddl_wait = true;
        break;
      }
      again = nullptr;
      if (replacement) {
        if (ready > flushed)
          emit(to, unread.subspan(flushed, ready - flushed), way.backlog, out.write_error);
        emit(to, *replacement, way.backlog, out.write_error);
        flushed = ready + out.last.length;
      }
    } else if (out.last.kind != Kind::pass) {
      break;
    }
    ready += out.last.length;
  }
  if (out.write_error) return out;
  // Everything decided since the last replacement goes in one write, straight from the buffer;
  // what the socket does not take is written by the pump's coroutine before the buffer moves.
  if (ready > flushed) {
    auto rest = unread.subspan(flushed, ready - flushed);
    if (way.backlog && !way.backlog->empty()) {
      way.backlog->insert(way.backlog->end(), rest.begin(), rest.end());
    } else if (!wrote_at_once(to, rest, out.write_error)) {
      if (&to == &client_) client_write_interrupted_ = true;
      out.rest = rest;
      out.ready = ready;
      return out;
    }
    if (out.write_error) return out;
  }
  out.backlog = way.backlog && !way.backlog->empty();
  settle(way.buffer, out.last, ready);
  return out;
}

Session::Relayed Session::relay_client(const protocol::RelayScanner::Step* again) {
  return relay(
      direction(true),
      [this](char type) {
        if (observing_) note_client_message(type);
        if (backend_may_park()) note_client_request(type);
      },
      [this](const protocol::MessageHeader& header, protocol::Bytes message) {
        // server_pool: the backend outlives the client, so its Terminate stays here.
        if (header.type == 'X' && backend_may_park())
          return std::optional(std::vector<std::byte>());
        if (!rewriting_) return std::optional<std::vector<std::byte>>();
        if (ddl_seeds_) {
          auto stand_in = ddl_seeds_->client_message(message, *rewriting_, transaction_status_);
          if (stand_in) rewriting_->note_replaced_client_message(message);
          if (stand_in || ddl_seeds_->waiting()) return stand_in;
        }
        auto replacement = rewriting_->client_message(message);
        if (replacement) list_.counters.statements_rewritten.add(1);
        return replacement;
      },
      [this](const protocol::MessageHeader&, protocol::Bytes head) {
        // Too long to rewrite: streamed; its names still keep the bookkeeping in step.
        HeadVerdict verdict;
        if (rewriting_) verdict.before = rewriting_->streamed_client_message(head);
        return verdict;
      },
      again);
}

Session::Relayed Session::relay_server(const protocol::RelayScanner::Step* again) {
  return relay(
      direction(false),
      [this](char type) {
        if (observing_ && (type == 'G' || type == 'W')) timer_.copy_in_started();
        // Which client message each server message answers, streamed ones included (not
        // DataRow).
        if (rewriting_ && type != 'D') rewriting_->server_started(type);
      },
      [this](const protocol::MessageHeader& header, protocol::Bytes message) {
        if (standby_check_ && standby_check_->screening()) return screen_login(header, message);
        // The first ReadyForQuery enables rewriting; that message itself was not followed.
        const bool following = rewriting_ != nullptr;
        on_server_message(header, message);
        if (!following) return std::optional<std::vector<std::byte>>();
        if (ddl_seeds_)
          if (auto swapped = ddl_seeds_->server_message(message)) return swapped;
        return rewriting_->server_message(message);
      },
      [this](const protocol::MessageHeader& header, protocol::Bytes) {
        if (standby_check_ && standby_check_->screening())
          return screen_long_login_message(header.type);
        // A long error or notice (it may quote a client's long value): streamed as sent, its
        // position left as it is, but dropped if it answers a message the proxy injected.
        HeadVerdict verdict;
        verdict.drop = rewriting_ && rewriting_->prepared().answer().injected;
        return verdict;
      },
      again);
}

}  // namespace seedproxy::proxy
