// server_pool: a backend whose client left it idle is reset and kept for the next client of the
// same startup packet; that client, authenticated by the proxy, hears the backend's login again.
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <random>
#include <tuple>
#include <variant>

#include "common/sqlstate.hpp"
#include "proxy/admin/admin_login.hpp"
#include "proxy/io/message_reader.hpp"
#include "proxy/session/session.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/body_reader.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Login messages and the answers read while resetting are small; a longer one (a result the
// client left behind) is not read through: the backend is closed instead.
constexpr std::uint32_t max_message = 1u << 16;
constexpr std::size_t max_reset_bytes = std::size_t{1} << 20;

std::vector<std::byte> authentication_ok() {
  protocol::PacketWriter writer;
  writer.begin('R');
  writer.put_u32(0);
  writer.finish();
  return writer.take();
}

// A text no earlier answer on the connection can carry by chance.
std::string reset_marker() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return "seedproxy reset " + std::to_string(generator()) + "-" + std::to_string(generator());
}

// Whether a DataRow is one column holding exactly `text`.
bool row_is(protocol::Bytes body, std::string_view text) {
  protocol::BodyReader reader(body);
  const auto columns = reader.u16();
  const auto length = reader.u32();
  if (!columns || *columns != 1 || !length || *length != text.size()) return false;
  const auto value = reader.bytes(*length);
  return value &&
         std::string_view(reinterpret_cast<const char*>(value->data()), value->size()) == text;
}

}  // namespace

bool Session::pooling() const noexcept {
  // Not for the admin console, whose own login to admin.auth_database runs through the same
  // upstream login before admin_console_ is set, and keeps no LoginAgain.
  return settings_->server_pool.enabled && settings_->auth_mode == config::AuthMode::proxy &&
         settings_->primary == nullptr && database_ != admin_database;
}

std::optional<std::vector<std::byte>> Session::reuse_server(const std::vector<std::byte>& startup) {
  if (!list_.pool) return std::nullopt;
  auto server = list_.pool->take(server_pool_key(startup), settings_->server_pool);
  if (!server) return std::nullopt;
  server_ = std::move(server->stream);
  upstream_.attempts = 1;
  upstream_.current = 0;
  auto out = authentication_ok();
  out.insert(out.end(), server->login.begin(), server->login.end());
  login_again_->login_messages = std::move(server->login);
  login_again_->born = server->born;
  login_again_->kept = true;
  login_again_->reused = true;
  return out;
}

asio::awaitable<std::optional<std::vector<std::byte>>> Session::read_login_messages(
    std::vector<std::byte> auth_ok, Ending& ending) {
  std::vector<std::byte> messages;
  for (;;) {
    auto read =
        co_await (read_message(server_, max_message) || login_->deadline.async_wait(use_tuple));
    if (read.index() == 1) {
      ending.reason = "the server did not complete the login in time";
      ending.tell(sqlstate::unable_to_connect, "seedproxy could not log in to the server in time");
      co_return std::nullopt;
    }
    auto message = std::move(std::get<0>(read));
    if (message.ec || message.error != protocol::FrameError::none) {
      ending.reason = "the server closed the connection during the login";
      ending.tell(sqlstate::connection_failure, "server closed the connection unexpectedly");
      co_return std::nullopt;
    }
    messages.insert(messages.end(), message.bytes.begin(), message.bytes.end());
    // An ErrorResponse after AuthenticationOk (no such database): the client hears it, and the
    // relay sees the server close; nothing is kept.
    if (message.type == 'E') break;
    if (message.type == 'Z') {
      login_again_->login_messages = messages;
      login_again_->born = std::chrono::steady_clock::now();
      login_again_->kept = true;
      break;
    }
  }
  auth_ok.insert(auth_ok.end(), messages.begin(), messages.end());
  co_return auth_ok;
}

void Session::follow_login_messages(protocol::Bytes messages) {
  while (!messages.empty()) {
    const auto frame = protocol::decode_message(messages, max_message);
    if (frame.status != protocol::Status::frame) return;
    const auto size = static_cast<std::size_t>(frame.message.header.total());
    on_server_message(frame.message.header, messages.first(size));
    messages = messages.subspan(size);
  }
}

const char* Session::reuse_refusal(const Ending& ending) const {
  if (terminate_) return "the session was ended by the proxy";
  if (!ending.client_left) return "the session did not end with the client leaving";
  if (transaction_status_ != 'I') return "the client left inside a transaction";
  // PostgreSQL would finish a Query or Sync the client sent and roll back what no Sync closed;
  // the reset query would run after the one and commit the other.
  if (client_unanswered_ != 0) return "the client left with a statement under way";
  if (client_unsynced_) return "the client left extended-protocol messages without a Sync";
  if (!from_client_.at_boundary() || dropping_from_client_ || client_backlog_)
    return "the client left in the middle of a message";
  if (!from_server_.at_boundary() || dropping_from_server_ || server_backlog_ ||
      !server_buffer_.unread().empty() || server_.buffered())
    return "the server's answer was not read through";
  return nullptr;
}

asio::awaitable<void> Session::park_server(Ending& ending) {
  if (!backend_may_park() || !pooling()) co_return;
  if (!server_.socket().is_open()) co_return;
  if (const char* refusal = reuse_refusal(ending)) {
    ending.reason += std::string("; backend closed: ") + refusal;
    co_return;
  }
  const bool reset = co_await reset_server();
  if (!reset) {
    ending.reason += "; backend closed: server_pool.reset_query did not succeed";
    co_return;
  }
  if (!list_.pool) list_.pool = std::make_unique<ServerPool>(client_.get_executor(), observer_);
  ServerPool::Server server{std::move(server_),
                            std::move(login_again_->login_messages),
                            backend_pid_,
                            login_again_->born,
                            user_,
                            database_};
  const auto refusal = list_.pool->park(server_pool_key(login_again_->startup), std::move(server),
                                        settings_->server_pool);
  ending.reason += refusal ? std::string("; backend closed: ") + refusal
                           : std::string("; backend kept for the next client");
}

// Reads the server's answers in whole socket reads (not a header and a body at a time: fewer
// system calls and waits per reset) and hands each message's type and body to `each` until it
// returns true. False when the connection fails, a message is malformed or too long, more than
// max_reset_bytes come, the deadline passes (reset_server's when_passed), or bytes follow the
// last message.
template <class Each>
asio::awaitable<bool> Session::read_server_messages(Each each) {
  std::vector<std::byte> pending;
  std::array<std::byte, 4096> chunk;
  std::size_t total = 0;
  for (;;) {
    std::size_t at = 0;
    for (;;) {
      const auto frame =
          protocol::decode_message(protocol::Bytes(pending).subspan(at), max_message);
      if (frame.status == protocol::Status::error) co_return false;
      if (frame.status == protocol::Status::need_more) break;
      at += static_cast<std::size_t>(frame.message.header.total());
      if (each(frame.message.header.type, frame.message.body)) co_return at == pending.size();
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(at));
    // The deadline cancels the read (when_passed): no race of two coroutines per read.
    std::tuple<boost::system::error_code, std::size_t> got;
    if (server_.tls())
      got = co_await server_.tls_receive(chunk);
    else
      got = co_await server_.socket().async_read_some(asio::buffer(chunk), use_tuple);
    const auto [ec, n] = got;
    total += n;
    if (ec || total > max_reset_bytes) co_return false;
    pending.insert(pending.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
  }
}

asio::awaitable<bool> Session::reset_server() {
  // A marker query after the reset: its row is the last answer, so everything the client left
  // in flight has been read when it comes, and nothing is left for the next client.
  const std::string marker = reset_marker();
  auto requests = protocol::query_message(settings_->server_pool.reset_query);
  const auto second = protocol::query_message("SELECT '" + marker + "'");
  requests.insert(requests.end(), second.begin(), second.end());
  const auto write_error = co_await write_all(server_, requests);
  if (write_error) co_return false;
  asio::steady_timer deadline(client_.get_executor());
  deadline.expires_after(seconds(settings_->connect_timeout_seconds));
  when_passed(deadline, &Session::cancel_server);
  bool failed = false, marked = false;
  std::optional<bool> idle;  // set at the marker's ReadyForQuery
  const bool read = co_await read_server_messages([&](char type, protocol::Bytes body) {
    if (type == 'E') failed = true;
    if (type == 'D') marked = row_is(body, marker);
    if (type == 'Z' && marked)
      idle = protocol::read_ready_for_query(body) == protocol::TransactionStatus::idle;
    return idle.has_value();
  });
  co_return read&& idle.value_or(false) && !failed;
}

}  // namespace seedproxy::proxy
