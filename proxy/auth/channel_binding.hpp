// tls-server-end-point channel binding (RFC 5929 §4.1): the hash of the server's certificate
// that both SCRAM-SHA-256-PLUS parties mix into the exchange.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

inline constexpr std::string_view tls_server_end_point = "tls-server-end-point";
// The gs2 header of a client that binds; it is also the prefix of the channel-binding data.
inline constexpr std::string_view gs2_header_plus = "p=tls-server-end-point,,";

// The hash of a DER certificate: with SHA-256 when the certificate is signed with MD5, SHA-1 or
// SHA-256, otherwise with its signature's own hash (SHA-384, SHA-512, ...). nullopt with a reason
// when the bytes are not exactly one certificate, or its signature algorithm names no single
// hash (Ed25519, Ed448, RSA-PSS): PostgreSQL cannot bind to such a certificate either.
[[nodiscard]] std::optional<std::vector<std::byte>> tls_server_end_point_hash(
    ByteSpan der_certificate, std::string& error);

// The `c=` value of a binding client-final-message: base64(gs2_header_plus || hash).
[[nodiscard]] std::string channel_binding_value(ByteSpan end_point_hash);

}  // namespace seedproxy::auth
