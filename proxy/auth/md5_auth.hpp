// md5 password authentication (AuthenticationMD5Password): checking a client's answer against a
// stored "md5<hex>" secret, and answering an upstream's challenge with that same stored hash.
// The stored hash is md5(password || user), and the answer to salt S is
// "md5" || md5(hex(stored) || S): whoever holds the stored hash can log in, which is why it is
// kept as a secret (wiped, compared in constant time) like a password.
#pragma once

#include <optional>
#include <string_view>

#include "proxy/auth/sasl_messages.hpp"
#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

inline constexpr std::string_view md5_prefix = "md5";
inline constexpr std::size_t md5_secret_length = 35;  // "md5" + 32 hex digits

// The 32 lowercase hex digits of a stored md5 secret (without the "md5" prefix).
class Md5Secret {
 public:
  [[nodiscard]] std::string_view hex() const noexcept { return hex_.text(); }

 private:
  friend std::optional<Md5Secret> parse_md5_secret(std::string_view text);
  friend Md5Secret md5_secret_from_password(std::string_view password, std::string_view user);
  friend Md5Secret mock_md5_secret(std::string_view user, const SecretKey& mock_nonce);
  explicit Md5Secret(SecretBytes hex) : hex_(std::move(hex)) {}
  SecretBytes hex_;
};

// "md5" followed by exactly 32 lowercase hex digits, as PostgreSQL's isMD5(); nullopt otherwise.
[[nodiscard]] std::optional<Md5Secret> parse_md5_secret(std::string_view text);
// What PostgreSQL stores for a password when password_encryption = md5.
[[nodiscard]] Md5Secret md5_secret_from_password(std::string_view password, std::string_view user);
// A stand-in for a user without one, so the check costs the same as for a real user.
[[nodiscard]] Md5Secret mock_md5_secret(std::string_view user, const SecretKey& mock_nonce);

// The PasswordMessage text answering `salt`: "md5" + md5(hex || salt).
[[nodiscard]] SecretBytes md5_response(const Md5Secret& secret, const Md5Salt& salt);
// Whether a client's PasswordMessage text answers `salt` for `secret` (constant time).
[[nodiscard]] bool verify_md5_response(const Md5Secret& secret, const Md5Salt& salt,
                                       std::string_view client_response);
// A fresh salt for AuthenticationMD5Password; false when the CSPRNG failed.
[[nodiscard]] bool random_md5_salt(Md5Salt& salt) noexcept;

}  // namespace seedproxy::auth
