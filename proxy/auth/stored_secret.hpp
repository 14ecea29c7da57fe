// A user's secret as the proxy holds it (auth.query's rolpassword or an auth.file line),
// classified by PostgreSQL's rules, and what each kind allows.
//
//   kind           client may use          proxy logs in upstream with
//   scram_sha_256  SCRAM(-PLUS)            the ClientKey recovered from the client's proof
//   md5            md5                     the stored hash (md5 upstream only)
//   plain_text     SCRAM(-PLUS) or md5     the password itself: PBKDF2 over the upstream's salt
//                                          and iterations at each login (a ClientKey cannot be
//                                          derived without them), or md5(password || user)
//   none           nothing (mock path)     nothing: only trust upstream
//
// A plain-text password therefore stays in memory as long as the userlist that holds it (in a
// wiped-on-destruction buffer); that is the price PgBouncer's format asks. Prefer SCRAM secrets.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "proxy/auth/md5_auth.hpp"
#include "proxy/auth/scram_secret.hpp"
#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

enum class SecretKind : std::uint8_t { none, scram_sha_256, md5, plain_text };

class StoredSecret {
 public:
  StoredSecret() = default;  // none

  // PostgreSQL's get_password_type(): "md5" + 32 lowercase hex is md5, a parseable
  // SCRAM-SHA-256 secret is SCRAM, anything else plain text; empty is none. Unlike PostgreSQL,
  // text that starts like a SCRAM secret but does not parse is refused (nullopt, `error` set)
  // rather than taken as a password: it is a damaged secret, not someone's password.
  [[nodiscard]] static std::optional<StoredSecret> classify(std::string_view text,
                                                            std::string& error);

  [[nodiscard]] SecretKind kind() const noexcept;
  [[nodiscard]] const ScramSecret* scram() const noexcept {
    return std::get_if<ScramSecret>(&value_);
  }
  [[nodiscard]] const Md5Secret* md5() const noexcept { return std::get_if<Md5Secret>(&value_); }
  [[nodiscard]] const SecretBytes* plain_text() const noexcept {
    return std::get_if<SecretBytes>(&value_);
  }

 private:
  std::variant<std::monostate, ScramSecret, Md5Secret, SecretBytes> value_;
};

// The SCRAM secret clients of a plain-text user are checked against: salted like a mock secret
// (deterministic per user and mock nonce, so it is stable across reloads and proxies and looks
// like any other user's). Computing it costs one PBKDF2: do it when the userlist is loaded, not
// per login, or the login of a plain-text user is measurably slower than an unknown user's.
// nullopt when the password needs SASLprep (see check_password_prep).
[[nodiscard]] std::optional<ScramSecret> scram_secret_for_password(
    std::string_view password, std::string_view user, const SecretKey& mock_nonce,
    std::uint32_t iterations = default_scram_iterations);

}  // namespace seedproxy::auth
