// Where the proxy finds the secret a client's password is checked against (auth.mode = "proxy"):
// the narrow interface the session's authentication uses, so a test can hand it secrets.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <optional>
#include <string>

#include "proxy/auth/scram_secret.hpp"
#include "proxy/auth/secret_bytes.hpp"
#include "proxy/auth/stored_secret.hpp"

namespace seedproxy::proxy {

enum class LookupStatus : std::uint8_t {
  found,         // `secret` holds the role's secret (kind none: the role has no password)
  no_such_role,  // the role does not exist (or may not log in)
  failed,        // the secret could not be read: `error` says why (for the log)
};

struct SecretLookup {
  LookupStatus status = LookupStatus::failed;
  auth::StoredSecret secret;
  // For a plain-text userlist password: the SCRAM secret computed when the file was loaded, so a
  // login costs the same as any other user's.
  std::optional<auth::ScramSecret> scram_for_password;
  // Salts the mock exchange of unknown roles: secret, stable across restarts and proxies.
  auth::SecretKey mock_nonce;
  std::string error;
};

class SecretSource {
 public:
  virtual ~SecretSource() = default;
  // Resumes on the caller's executor. Never throws.
  [[nodiscard]] virtual boost::asio::awaitable<SecretLookup> lookup(std::string user) = 0;
};

}  // namespace seedproxy::proxy
