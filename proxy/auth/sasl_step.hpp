// The result of one step of a SASL exchange, shared by the proxy's SCRAM server and client.
#pragma once

#include <cstdint>
#include <string>

#include "proxy/auth/auth_error.hpp"

namespace seedproxy::auth {

enum class SaslOutcome : std::uint8_t {
  continue_exchange,  // send `message` and wait for the peer's answer
  success,            // send `message` (the final one); the exchange is complete and verified
  failure,            // send `error`; the exchange is over
};

struct SaslStep {
  SaslOutcome outcome = SaslOutcome::failure;
  std::string message;
  AuthError error;

  [[nodiscard]] static SaslStep proceed(std::string message) {
    return {SaslOutcome::continue_exchange, std::move(message), {}};
  }
  [[nodiscard]] static SaslStep succeed(std::string message) {
    return {SaslOutcome::success, std::move(message), {}};
  }
  [[nodiscard]] static SaslStep fail(AuthError error) {
    return {SaslOutcome::failure, {}, std::move(error)};
  }
};

}  // namespace seedproxy::auth
