// Starting TLS on a fresh upstream connection as server_tls says (SSLRequest, then the
// handshake, certificate and name checks): an encrypted stream, a plain one where `prefer`
// allows it, or a clear reason. Never a silent downgrade past `require`.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "proxy/io/stream.hpp"
#include "proxy/tls/tls_contexts.hpp"

namespace seedproxy::proxy {

struct UpstreamTls {
  bool ok = false;
  bool encrypted = false;
  bool verification_failed = false;  // the certificate or its name did not check out
  std::string error;                 // when !ok: libpq-like wording
};

// `server_name`: the host connected to (SNI, and the name verify-full checks).
[[nodiscard]] boost::asio::awaitable<UpstreamTls> negotiate_upstream_tls(
    Stream& server, const UpstreamTlsContext& tls, const std::string& server_name);

}  // namespace seedproxy::proxy
