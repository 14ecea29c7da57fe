// Admin console login (PgBouncer's convention): PostgreSQL authenticates the user against the
// auth database, the proxy relays that exchange unchanged, then checks admin.users.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/io/stream.hpp"
#include "proxy/wire/startup.hpp"

namespace seedproxy::proxy {

// The database name that selects the admin console instead of a relayed session.
inline constexpr std::string_view admin_database = "seedproxy";

// The client's startup packet with `database` replaced by the auth database.
[[nodiscard]] std::vector<std::byte> admin_auth_startup(const protocol::StartupParameters& startup,
                                                        std::string_view auth_database);

struct AdminLogin {
  bool ok = false;
  std::string reason;            // for the log when !ok
  std::string_view client_code;  // FATAL SQLSTATE to send the client; empty: nothing (more) to say
  std::string client_message;
};

// Runs the authentication exchange between `client` and `server` (the startup packet has already
// been sent upstream). On success the client has received AuthenticationOk and the server's
// ParameterStatus messages, the upstream connection is terminated, and the caller continues
// with BackendKeyData and ReadyForQuery of its own.
[[nodiscard]] boost::asio::awaitable<AdminLogin> admin_login(
    Stream& client, Stream& server, const std::string& user,
    const std::vector<std::string>& admin_users);

// The end of an admin console login whose password was already checked (auth.mode = proxy: by the
// proxy, then by the server's acceptance of the proxy's login): `auth_ok` is the server's
// AuthenticationOk. Checks admin.users and continues as admin_login does.
[[nodiscard]] boost::asio::awaitable<AdminLogin> finish_admin_login(
    Stream& client, Stream& server, const std::string& user,
    const std::vector<std::string>& admin_users, std::vector<std::byte> auth_ok);

}  // namespace seedproxy::proxy
