// Admin console login: the auth exchange relayed to PostgreSQL, then the admin.users check.
#include "proxy/admin/admin_login.hpp"

#include <algorithm>
#include <array>
#include <optional>

#include "common/sqlstate.hpp"
#include "proxy/io/message_reader.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

// Authentication tokens are capped at 64 KiB by PostgreSQL; server messages before
// ReadyForQuery are small too.
constexpr std::uint32_t max_login_message = 65536;

constexpr std::string_view invalid_authorization = sqlstate::invalid_authorization_specification;

// A login that ends here: `reason` for the log, and a FATAL `code` for the client unless empty.
AdminLogin failure(std::string reason, std::string_view code = {}, std::string message = {}) {
  AdminLogin out;
  out.reason = std::move(reason);
  out.client_code = code;
  out.client_message = std::move(message);
  return out;
}
AdminLogin client_gone() {
  return failure("client closed the connection during the admin console login");
}
AdminLogin upstream_gone() {
  return failure("upstream closed the connection during the admin console login",
                 sqlstate::connection_failure, "server closed the connection unexpectedly");
}
AdminLogin unexpected_from_upstream(char type) {
  return failure("unexpected message type '" + std::string(1, type) +
                     "' from upstream during the admin console login",
                 sqlstate::protocol_violation,
                 "seedproxy received an invalid message from the server");
}

asio::awaitable<bool> send(Stream& stream, protocol::Bytes bytes) {
  co_return !co_await stream.write_all(bytes);
}

// PostgreSQL's own refusal (wrong password 28P01, unknown user 28000, ...) goes to the client as
// sent; it ends the login.
asio::awaitable<AdminLogin> refused_upstream(Stream& client, const ReadMessage& error,
                                             bool authenticated) {
  co_await send(client, error.bytes);
  co_return failure(authenticated ? "upstream refused the admin console session after login"
                                  : "upstream refused the admin console login");
}

// The client's answer to an authentication request (password, SASL response, GSS token),
// relayed to the server. A failure, or nullopt once relayed.
asio::awaitable<std::optional<AdminLogin>> relay_answer(Stream& client, Stream& server) {
  auto reply = co_await read_message(client, max_login_message);
  if (reply.ec || reply.error != protocol::FrameError::none) co_return client_gone();
  if (reply.type != 'p') {
    co_return failure(
        "protocol violation during the admin console login: expected a password message, got "
        "type '" +
            std::string(1, reply.type) + "'",
        sqlstate::protocol_violation,
        "expected password response, got message type " +
            std::to_string(static_cast<unsigned char>(reply.type)));
  }
  const bool sent = co_await send(server, reply.bytes);
  if (!sent) co_return upstream_gone();
  co_return std::nullopt;
}

// Relays the authentication exchange until PostgreSQL sends AuthenticationOk, which is left in
// `auth_ok`, not yet forwarded: admin.users is checked first. A failure, or nullopt.
asio::awaitable<std::optional<AdminLogin>> relay_authentication(Stream& client, Stream& server,
                                                                ReadMessage& auth_ok) {
  for (;;) {
    auto message = co_await read_message(server, max_login_message);
    if (message.ec || message.error != protocol::FrameError::none) co_return upstream_gone();
    if (message.type == 'E') co_return co_await refused_upstream(client, message, false);
    const auto request =
        message.type == 'R' ? protocol::read_authentication(message.body()) : std::nullopt;
    if (request && request->code == protocol::authentication::ok) {
      auth_ok = std::move(message);
      co_return std::nullopt;
    }
    // NegotiateProtocolVersion and notices may precede authentication.
    if (!request && message.type != 'v' && message.type != 'N')
      co_return unexpected_from_upstream(message.type);
    const bool sent = co_await send(client, message.bytes);
    if (!sent) co_return client_gone();
    // Every other request expects exactly one answer.
    if (request && request->code != protocol::authentication::sasl_final) {
      auto failed = co_await relay_answer(client, server);
      if (failed) co_return failed;
    }
  }
}

// After AuthenticationOk: keeps the server's parameters and notices in `greeting`, drops its
// backend key (the console is not that backend), and stops at ReadyForQuery. A failure, or
// nullopt.
asio::awaitable<std::optional<AdminLogin>> read_greeting(Stream& client, Stream& server,
                                                         std::vector<std::byte>& greeting) {
  for (;;) {
    auto message = co_await read_message(server, max_login_message);
    if (message.ec || message.error != protocol::FrameError::none) co_return upstream_gone();
    switch (message.type) {
      case 'E':
        co_return co_await refused_upstream(client, message, true);
      case 'S':
      case 'N':
        greeting.insert(greeting.end(), message.bytes.begin(), message.bytes.end());
        break;
      case 'K':
        break;
      case 'Z':
        co_return std::nullopt;
      default:
        co_return unexpected_from_upstream(message.type);
    }
  }
}

}  // namespace

std::vector<std::byte> admin_auth_startup(const protocol::StartupParameters& startup,
                                          std::string_view auth_database) {
  protocol::PacketWriter writer;
  writer.put_u32(0);  // length, patched below
  writer.put_u32(startup.protocol);
  bool replaced = false;
  for (const auto& [name, value] : startup.parameters) {
    writer.put_cstring(name);
    if (name == "database") {
      writer.put_cstring(auth_database);
      replaced = true;
    } else {
      writer.put_cstring(value);
    }
  }
  if (!replaced) {
    // The database defaulted to the user name "seedproxy".
    writer.put_cstring("database");
    writer.put_cstring(auth_database);
  }
  writer.put_u8(0);
  auto packet = writer.take();
  const auto length = static_cast<std::uint32_t>(packet.size());
  for (int i = 0; i < 4; ++i) packet[i] = static_cast<std::byte>(length >> (24 - 8 * i));
  return packet;
}

asio::awaitable<AdminLogin> admin_login(Stream& client, Stream& server, const std::string& user,
                                        const std::vector<std::string>& admin_users) {
  ReadMessage auth_ok;
  const auto failed = co_await relay_authentication(client, server, auth_ok);
  if (failed) co_return *failed;
  co_return co_await finish_admin_login(client, server, user, admin_users,
                                        std::move(auth_ok.bytes));
}

asio::awaitable<AdminLogin> finish_admin_login(Stream& client, Stream& server,
                                               const std::string& user,
                                               const std::vector<std::string>& admin_users,
                                               std::vector<std::byte> auth_ok) {
  if (std::find(admin_users.begin(), admin_users.end(), user) == admin_users.end()) {
    co_return failure("user \"" + user + "\" is not listed in admin.users", invalid_authorization,
                      "user \"" + user + "\" is not allowed to use the seedproxy admin console");
  }
  const bool sent_ok = co_await send(client, auth_ok);
  if (!sent_ok) co_return client_gone();
  std::vector<std::byte> greeting;
  const auto failed = co_await read_greeting(client, server, greeting);
  if (failed) co_return *failed;
  // The console answers by itself from here: end the backend politely.
  co_await send(server, protocol::terminate_message);
  server.close();
  const bool sent_greeting = co_await send(client, greeting);
  if (!sent_greeting) co_return client_gone();
  AdminLogin out;
  out.ok = true;
  co_return out;
}

}  // namespace seedproxy::proxy
