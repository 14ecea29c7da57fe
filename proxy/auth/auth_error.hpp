// Why an authentication exchange was refused: the SQLSTATE and words the client hears (chosen
// where the reason is known) and what only the proxy's log may learn.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace seedproxy::auth {

enum class AuthErrorCode : std::uint8_t {
  protocol_violation,     // 08P01: malformed or out-of-order SASL/SCRAM message
  invalid_authorization,  // 28000: channel binding refused or failed
  invalid_password,       // 28P01: wrong password, and equally unknown role or no usable secret
  feature_not_supported,  // 0A000: authzid, mandatory SCRAM extensions
  internal_error,         // XX000: the CSPRNG failed
  upstream_login,         // 08001: the proxy could not log in to the upstream server
};

[[nodiscard]] std::string_view sqlstate(AuthErrorCode code) noexcept;

struct AuthError {
  AuthErrorCode code = AuthErrorCode::protocol_violation;
  std::string message;     // primary message for the client (FATAL), PostgreSQL's wording
  std::string detail;      // optional detail for the client
  std::string log_detail;  // for the log only: e.g. that the role does not exist
};

// PostgreSQL's refusal for a failed password check, identical whatever the real reason (wrong
// password, no such role, no usable secret); the reason goes to `log_detail`.
[[nodiscard]] AuthError password_failed(std::string_view user, std::string log_detail);

}  // namespace seedproxy::auth
