// PostgreSQL's stored SCRAM-SHA-256 secret (pg_authid.rolpassword):
// SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>.
// Parsing, building from a password, and the deterministic mock secret for unknown users.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/scram_keys.hpp"
#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

inline constexpr std::string_view scram_secret_prefix = "SCRAM-SHA-256$";
// PostgreSQL's SCRAM_DEFAULT_ITERATIONS and SCRAM_DEFAULT_SALT_LEN.
inline constexpr std::uint32_t default_scram_iterations = 4096;
inline constexpr std::size_t default_scram_salt_size = 16;
// Bounds on what the proxy accepts in a secret, far above what PostgreSQL writes.
inline constexpr std::size_t max_scram_salt_size = 256;
inline constexpr std::size_t max_scram_secret_length = 1024;

struct ScramSecret {
  std::uint32_t iterations = 0;  // 1 .. INT_MAX
  std::vector<std::byte> salt;   // decoded; public (every client is told it)
  std::string salt_base64;       // as stored: sent verbatim in server-first-message
  SecretKey stored_key;
  SecretKey server_key;
};

// nullopt unless `text` is exactly a well-formed secret in the form above.
[[nodiscard]] std::optional<ScramSecret> parse_scram_secret(std::string_view text);
// The secret's text form, as pg_authid would hold it.
[[nodiscard]] SecretBytes format_scram_secret(const ScramSecret& secret);

// The secret PostgreSQL would store for `password` with this salt and iteration count; nullopt
// when the password is not usable without SASLprep (see check_password_prep).
[[nodiscard]] std::optional<ScramSecret> build_scram_secret(std::string_view password,
                                                            ByteSpan salt,
                                                            std::uint32_t iterations);

// The salt of a user who does not exist, like PostgreSQL's scram_mock_salt: the first 16 bytes of
// SHA-256(user || mock_nonce). Stable for a given nonce, so asking twice reveals nothing.
[[nodiscard]] std::vector<std::byte> mock_scram_salt(std::string_view user,
                                                     const SecretKey& mock_nonce);
// A plausible secret for a user without one: the mock salt, `iterations`, zero keys (no proof
// can match them; the exchange is failed regardless).
[[nodiscard]] ScramSecret mock_scram_secret(std::string_view user, const SecretKey& mock_nonce,
                                            std::uint32_t iterations = default_scram_iterations);

}  // namespace seedproxy::auth
