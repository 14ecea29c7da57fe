// SQLSTATEs of authentication refusals, and the one wording of a failed password check.
#include "proxy/auth/auth_error.hpp"

namespace seedproxy::auth {

std::string_view sqlstate(AuthErrorCode code) noexcept {
  switch (code) {
    case AuthErrorCode::protocol_violation:
      return "08P01";
    case AuthErrorCode::invalid_authorization:
      return "28000";
    case AuthErrorCode::invalid_password:
      return "28P01";
    case AuthErrorCode::feature_not_supported:
      return "0A000";
    case AuthErrorCode::internal_error:
      return "XX000";
    case AuthErrorCode::upstream_login:
      return "08001";
  }
  return "XX000";
}

AuthError password_failed(std::string_view user, std::string log_detail) {
  AuthError error;
  error.code = AuthErrorCode::invalid_password;
  error.message = "password authentication failed for user \"";
  error.message += user;
  error.message += '"';
  error.log_detail = std::move(log_detail);
  return error;
}

}  // namespace seedproxy::auth
