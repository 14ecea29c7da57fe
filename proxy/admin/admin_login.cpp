// Admin console login: the auth exchange relayed to PostgreSQL, then the admin.users check.
#include "proxy/admin/admin_login.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "common/sqlstate.hpp"
#include "proxy/io/message_reader.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// Authentication tokens are capped at 64 KiB by PostgreSQL; server messages before
// ReadyForQuery are small too.
constexpr std::uint32_t max_login_message = 65536;

constexpr std::uint32_t auth_ok = 0;
constexpr std::uint32_t auth_sasl_final = 12;

constexpr std::string_view invalid_authorization = sqlstate::invalid_authorization_specification;

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

asio::awaitable<AdminLogin> admin_login(tcp::socket& client, tcp::socket& server,
                                        const std::string& user,
                                        const std::vector<std::string>& admin_users) {
  AdminLogin out;
  const auto to = [](tcp::socket& socket, protocol::Bytes bytes) -> asio::awaitable<bool> {
    auto [ec, n] =
        co_await asio::async_write(socket, asio::buffer(bytes.data(), bytes.size()), use_tuple);
    co_return !ec;
  };
  bool authenticated = false;
  std::vector<std::byte> greeting;  // ParameterStatus and notices after AuthenticationOk
  for (;;) {
    auto message = co_await read_message(server, max_login_message);
    if (message.ec || message.error != protocol::FrameError::none) {
      out.reason = "upstream closed the connection during the admin console login";
      out.client_code = sqlstate::connection_failure;
      out.client_message = "server closed the connection unexpectedly";
      co_return out;
    }
    const auto body = message.body();
    if (message.type == 'E') {
      // PostgreSQL's own refusal (wrong password 28P01, unknown user 28000, ...) goes to the
      // client as sent; it ends the login.
      out.reason = authenticated ? "upstream refused the admin console session after login"
                                 : "upstream refused the admin console login";
      co_await to(client, message.bytes);
      co_return out;
    }
    if (!authenticated && message.type == 'R' && body.size() >= 4) {
      const auto code = protocol::read_u32(body, 0);
      if (code == auth_ok) {
        authenticated = true;
        if (std::find(admin_users.begin(), admin_users.end(), user) == admin_users.end()) {
          out.reason = "user \"" + user + "\" is not listed in admin.users";
          out.client_code = invalid_authorization;
          out.client_message =
              "user \"" + user + "\" is not allowed to use the seedproxy admin console";
          co_return out;
        }
        if (!co_await to(client, message.bytes)) {
          out.reason = "client closed the connection during the admin console login";
          co_return out;
        }
        continue;
      }
      if (!co_await to(client, message.bytes)) {
        out.reason = "client closed the connection during the admin console login";
        co_return out;
      }
      if (code == auth_sasl_final) continue;
      // Every other request expects exactly one answer (password, SASL response, GSS token).
      auto reply = co_await read_message(client, max_login_message);
      if (reply.ec || reply.error != protocol::FrameError::none) {
        out.reason = "client closed the connection during the admin console login";
        co_return out;
      }
      if (reply.type != 'p') {
        out.reason =
            "protocol violation during the admin console login: expected a password "
            "message, got type '" +
            std::string(1, reply.type) + "'";
        out.client_code = sqlstate::protocol_violation;
        out.client_message = "expected password response, got message type " +
                             std::to_string(static_cast<unsigned char>(reply.type));
        co_return out;
      }
      if (!co_await to(server, reply.bytes)) {
        out.reason = "upstream closed the connection during the admin console login";
        out.client_code = sqlstate::connection_failure;
        out.client_message = "server closed the connection unexpectedly";
        co_return out;
      }
      continue;
    }
    if (!authenticated) {
      // NegotiateProtocolVersion and notices may precede authentication.
      if (message.type == 'v' || message.type == 'N') {
        if (!co_await to(client, message.bytes)) {
          out.reason = "client closed the connection during the admin console login";
          co_return out;
        }
        continue;
      }
      out.reason = "unexpected message type '" + std::string(1, message.type) +
                   "' from upstream during the admin console login";
      out.client_code = sqlstate::protocol_violation;
      out.client_message = "seedproxy received an invalid message from the server";
      co_return out;
    }
    // After AuthenticationOk: keep the server's parameters, drop its backend key (the console
    // is not that backend), and stop at ReadyForQuery.
    if (message.type == 'S' || message.type == 'N') {
      greeting.insert(greeting.end(), message.bytes.begin(), message.bytes.end());
      continue;
    }
    if (message.type == 'K') continue;
    if (message.type == 'Z') break;
    out.reason = "unexpected message type '" + std::string(1, message.type) +
                 "' from upstream during the admin console login";
    out.client_code = sqlstate::protocol_violation;
    out.client_message = "seedproxy received an invalid message from the server";
    co_return out;
  }
  // The console answers by itself from here: end the backend politely.
  const std::array<std::byte, 5> terminate{std::byte{'X'}, std::byte{0}, std::byte{0}, std::byte{0},
                                           std::byte{4}};
  co_await to(server, terminate);
  boost::system::error_code ignored;
  server.shutdown(tcp::socket::shutdown_both, ignored);
  server.close(ignored);
  if (!co_await to(client, greeting)) {
    out.reason = "client closed the connection during the admin console login";
    co_return out;
  }
  out.ok = true;
  co_return out;
}

}  // namespace seedproxy::proxy
