// SCRAM-SHA-256 key arithmetic (RFC 5802 §3): salted password, ClientKey, ServerKey, StoredKey,
// signatures and proofs, and recovering a ClientKey from a proof that verified.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

// PostgreSQL refuses longer passwords in SCRAM (MAX_PASSWORD_LENGTH in pg_saslprep).
inline constexpr std::size_t max_scram_password_length = 1024;

// Whether a plain-text password can be hashed for SCRAM exactly as PostgreSQL would. PostgreSQL
// runs SASLprep (RFC 4013: NFKC and mapping tables) over valid UTF-8 with non-ASCII characters;
// pure ASCII comes out unchanged, and invalid UTF-8 is used raw. The proxy does not carry the
// Unicode tables, so it handles the two exact cases and refuses the third rather than guess.
enum class PasswordPrep : std::uint8_t { usable, too_long, needs_saslprep };
[[nodiscard]] PasswordPrep check_password_prep(std::string_view password) noexcept;

// SaltedPassword = Hi(password, salt, i). The password must be `usable`.
[[nodiscard]] SecretKey salted_password(std::string_view password, ByteSpan salt,
                                        std::uint32_t iterations);
[[nodiscard]] SecretKey client_key_from(const SecretKey& salted);      // HMAC(salted, "Client Key")
[[nodiscard]] SecretKey server_key_from(const SecretKey& salted);      // HMAC(salted, "Server Key")
[[nodiscard]] SecretKey stored_key_from(const SecretKey& client_key);  // H(ClientKey)

// AuthMessage = client-first-message-bare "," server-first-message "," client-final-without-proof
[[nodiscard]] std::string auth_message(std::string_view client_first_bare,
                                       std::string_view server_first,
                                       std::string_view client_final_without_proof);
[[nodiscard]] SecretKey client_signature(const SecretKey& stored_key,
                                         std::string_view auth_message);
[[nodiscard]] SecretKey server_signature(const SecretKey& server_key,
                                         std::string_view auth_message);
[[nodiscard]] SecretKey xor_keys(const SecretKey& a, const SecretKey& b) noexcept;

// ClientKey = ClientProof XOR ClientSignature, returned only when H(ClientKey) == StoredKey
// (compared in constant time). Does the same work whether or not it verifies.
[[nodiscard]] std::optional<SecretKey> recover_client_key(const SecretKey& client_proof,
                                                          const SecretKey& stored_key,
                                                          std::string_view auth_message);

// Everything the proxy needs to log in upstream as a user whose SCRAM proof it verified: the
// recovered ClientKey, the ServerKey from the stored secret (to check the server's signature;
// absent when only the ClientKey is known) and the salt and iteration count the ClientKey belongs
// to, which the upstream must announce unchanged.
struct ScramKeys {
  SecretKey client_key;
  std::optional<SecretKey> server_key;
  std::vector<std::byte> salt;
  std::uint32_t iterations = 0;
};

}  // namespace seedproxy::auth
