// The OpenSSL contexts the proxy uses on each leg, built from client_tls and server_tls: loaded
// at start and on every reload (a file that fails keeps the old context in force), shared by
// the sessions that started under them.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace seedproxy::proxy {

using SslContextPtr = std::shared_ptr<SSL_CTX>;

// The proxy as a TLS server, to its clients.
struct ClientTlsContext {
  config::SslMode mode = config::SslMode::disable;
  SslContextPtr context;  // null when mode is disable
  // tls_server_end_point_hash of the proxy's certificate, computed once per load; empty when the
  // certificate's signature names no single hash (then SCRAM-SHA-256-PLUS is not offered).
  std::vector<std::byte> end_point_hash;
  // Whether the client must present a certificate the CA signed (verify-ca, verify-full), and
  // whether its common name must be the user name (verify-full, as PostgreSQL's clientcert).
  [[nodiscard]] bool wants_certificate() const noexcept {
    return mode == config::SslMode::verify_ca || mode == config::SslMode::verify_full;
  }
  // Whether a plain-text startup is refused.
  [[nodiscard]] bool required() const noexcept {
    return mode == config::SslMode::require || wants_certificate();
  }
};

// The proxy as a TLS client, to PostgreSQL (sessions and control connections).
struct UpstreamTlsContext {
  config::SslMode mode = config::SslMode::disable;
  SslContextPtr context;  // null when mode is disable
  [[nodiscard]] bool required() const noexcept { return mode >= config::SslMode::require; }
  [[nodiscard]] bool verify_name() const noexcept { return mode == config::SslMode::verify_full; }
};

// Why a context could not be built: names the configuration key, the file and OpenSSL's reason.
class TlsLoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws TlsLoadError.
[[nodiscard]] std::shared_ptr<const ClientTlsContext> load_client_tls(const config::ClientTls& tls);
// The name to check is the host each connection goes to (negotiate_upstream_tls).
[[nodiscard]] std::shared_ptr<const UpstreamTlsContext> load_upstream_tls(
    const config::ServerTls& tls);

// The ALPN protocol of PostgreSQL 17's direct TLS negotiation.
inline constexpr std::string_view postgresql_alpn = "postgresql";

// The common name of the peer's certificate (verify-full's user check); empty when none.
[[nodiscard]] std::string peer_common_name(SSL* ssl);

// The tls-server-end-point channel-binding hash of `certificate` (RFC 5929, as PostgreSQL
// computes it), or empty when there is none or it cannot be encoded.
[[nodiscard]] std::vector<std::byte> certificate_end_point_hash(X509* certificate);

}  // namespace seedproxy::proxy
