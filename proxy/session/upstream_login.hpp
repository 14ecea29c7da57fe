// auth.mode = "proxy", server side: the proxy answers PostgreSQL's authentication request itself
// with the credential the client's proof gave it (SCRAM ClientKey, md5 hash, or nothing for
// trust), and accepts AuthenticationOk only after a complete exchange.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/io/stream.hpp"
#include "proxy/session/client_auth.hpp"

namespace seedproxy::proxy {

struct UpstreamLogin {
  bool ok = false;
  std::vector<std::byte> auth_ok;  // the server's AuthenticationOk, for the client
  std::string mechanism;           // what the server asked for
  std::string reason;              // for the log when !ok
  std::string_view code;           // FATAL SQLSTATE for the client; empty: see server_error
  std::string message;
  std::vector<std::byte> server_error;  // PostgreSQL's own refusal, relayed to the client as sent
};

struct UpstreamLoginOptions {
  // The upstream's certificate was checked against server_tls.ca_file and its name (verify-full):
  // then a SCRAM exchange that cannot check the server's signature is acceptable.
  bool server_identity_verified = false;
};

// After the StartupMessage went upstream: runs the exchange up to AuthenticationOk.
[[nodiscard]] boost::asio::awaitable<UpstreamLogin> login_upstream(
    Stream& server, UpstreamCredential credential, const UpstreamLoginOptions& options);

}  // namespace seedproxy::proxy
