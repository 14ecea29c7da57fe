// The SCRAM-SHA-256 key derivations, and the SASLprep boundary PostgreSQL draws around them.
#include "proxy/auth/scram_keys.hpp"

#include "proxy/auth/crypto.hpp"

namespace seedproxy::auth {
namespace {

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF), as pg_utf8_islegal.
bool valid_utf8(std::string_view text) noexcept {
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t length = 0;
    unsigned char low = 0x80, high = 0xbf;  // bounds of the first continuation byte
    if (lead < 0x80) {
      length = 1;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      if (lead == 0xe0) low = 0xa0;
      if (lead == 0xed) high = 0x9f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      if (lead == 0xf0) low = 0x90;
      if (lead == 0xf4) high = 0x8f;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto c = static_cast<unsigned char>(text[i + k]);
      if (k == 1 ? (c < low || c > high) : (c < 0x80 || c > 0xbf)) return false;
    }
    i += length;
  }
  return true;
}

}  // namespace

PasswordPrep check_password_prep(std::string_view password) noexcept {
  if (password.size() > max_scram_password_length) return PasswordPrep::too_long;
  bool ascii = true;
  for (char c : password) ascii = ascii && static_cast<unsigned char>(c) < 0x80;
  if (ascii || !valid_utf8(password)) return PasswordPrep::usable;
  return PasswordPrep::needs_saslprep;
}

SecretKey salted_password(std::string_view password, ByteSpan salt, std::uint32_t iterations) {
  return pbkdf2_sha256(as_bytes(password), salt, iterations);
}

SecretKey client_key_from(const SecretKey& salted) {
  return hmac_sha256(salted.bytes(), as_bytes("Client Key"));
}

SecretKey server_key_from(const SecretKey& salted) {
  return hmac_sha256(salted.bytes(), as_bytes("Server Key"));
}

SecretKey stored_key_from(const SecretKey& client_key) { return sha256(client_key.bytes()); }

std::string auth_message(std::string_view client_first_bare, std::string_view server_first,
                         std::string_view client_final_without_proof) {
  std::string out;
  out.reserve(client_first_bare.size() + server_first.size() + client_final_without_proof.size() +
              2);
  out.append(client_first_bare).append(",").append(server_first).append(",");
  out.append(client_final_without_proof);
  return out;
}

SecretKey client_signature(const SecretKey& stored_key, std::string_view auth_message) {
  return hmac_sha256(stored_key.bytes(), as_bytes(auth_message));
}

SecretKey server_signature(const SecretKey& server_key, std::string_view auth_message) {
  return hmac_sha256(server_key.bytes(), as_bytes(auth_message));
}

SecretKey xor_keys(const SecretKey& a, const SecretKey& b) noexcept {
  SecretKey out;
  const auto left = a.bytes();
  const auto right = b.bytes();
  auto result = out.data();
  for (std::size_t i = 0; i < SecretKey::size; ++i) result[i] = left[i] ^ right[i];
  return out;
}

std::optional<SecretKey> recover_client_key(const SecretKey& client_proof,
                                            const SecretKey& stored_key,
                                            std::string_view auth_message) {
  const SecretKey signature = client_signature(stored_key, auth_message);
  SecretKey client_key = xor_keys(client_proof, signature);
  const SecretKey computed_stored_key = stored_key_from(client_key);
  if (!(computed_stored_key == stored_key)) return std::nullopt;
  return client_key;
}

}  // namespace seedproxy::auth
