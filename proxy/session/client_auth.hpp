// auth.mode = "proxy", client side: the proxy itself asks the client for its password
// (SCRAM-SHA-256, SCRAM-SHA-256-PLUS bound to the proxy's certificate, or md5) and checks it
// against the role's stored secret, then holds what it needs to log in upstream as that role: the
// ClientKey recovered from the proof, or the stored md5 hash. Never a plain-text password of a
// client.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/md5_auth.hpp"
#include "proxy/auth/scram_client.hpp"
#include "proxy/credentials/secret_source.hpp"
#include "proxy/io/stream.hpp"

namespace seedproxy::proxy {

// What the proxy logs in upstream with, once the client has proved itself.
struct UpstreamCredential {
  std::optional<auth::ScramCredential> scram;  // for SCRAM-SHA-256(-PLUS) upstream
  std::optional<auth::Md5Secret> md5;          // for md5 upstream
  // A trusted user (auth.trust_users): nothing; the upstream must not ask for a password.
};

struct ClientAuth {
  bool ok = false;
  UpstreamCredential credential;
  std::string mechanism;  // "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "md5", "trust"
  std::string reason;     // for the log when !ok
  std::string_view code;  // FATAL SQLSTATE for the client; empty: it is gone or was told
  std::string message;    // PostgreSQL's wording
  std::string detail;
};

struct ClientAuthRequest {
  std::string user;
  bool trusted = false;  // listed in auth.trust_users
  // tls_server_end_point hash of the certificate presented on this connection; empty on plain
  // TCP or when the certificate cannot be bound to.
  std::vector<std::byte> end_point_hash;
};

// Runs the exchange on `client` after its StartupMessage. On success the client has received
// AuthenticationSASLFinal (SCRAM) but not AuthenticationOk: that waits for the upstream login.
[[nodiscard]] boost::asio::awaitable<ClientAuth> authenticate_client(
    Stream& client, const ClientAuthRequest& request, SecretLookup lookup);

}  // namespace seedproxy::proxy
