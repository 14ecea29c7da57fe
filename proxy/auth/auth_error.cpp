// SQLSTATEs of authentication refusals, and the one wording of a failed password check.
#include "proxy/auth/auth_error.hpp"

#include "common/sqlstate.hpp"

namespace seedproxy::auth {

std::string_view sqlstate(AuthErrorCode code) noexcept {
  switch (code) {
    case AuthErrorCode::protocol_violation:
      return sqlstate::protocol_violation;
    case AuthErrorCode::invalid_authorization:
      return sqlstate::invalid_authorization_specification;
    case AuthErrorCode::invalid_password:
      return sqlstate::invalid_password;
    case AuthErrorCode::feature_not_supported:
      return sqlstate::feature_not_supported;
    case AuthErrorCode::internal_error:
      return sqlstate::internal_error;
    case AuthErrorCode::upstream_login:
      return sqlstate::unable_to_connect;
  }
  return sqlstate::internal_error;
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
