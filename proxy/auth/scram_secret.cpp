// Reading, writing and mocking PostgreSQL's SCRAM-SHA-256 secrets.
#include "proxy/auth/scram_secret.hpp"

#include <charconv>
#include <climits>

#include "proxy/auth/base64.hpp"
#include "proxy/auth/crypto.hpp"

namespace seedproxy::auth {
namespace {

// Splits `text` at the first `separator`; false when there is none.
bool split_at(std::string_view& text, char separator, std::string_view& head) {
  const auto at = text.find(separator);
  if (at == std::string_view::npos) return false;
  head = text.substr(0, at);
  text.remove_prefix(at + 1);
  return true;
}

std::optional<std::uint32_t> parse_iterations(std::string_view text) {
  std::uint32_t value = 0;
  if (text.empty() || text.size() > 10) return std::nullopt;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  if (value == 0 || value > static_cast<std::uint32_t>(INT_MAX)) return std::nullopt;
  return value;
}

}  // namespace

std::optional<ScramSecret> parse_scram_secret(std::string_view text) {
  if (text.size() > max_scram_secret_length || !text.starts_with(scram_secret_prefix))
    return std::nullopt;
  text.remove_prefix(scram_secret_prefix.size());
  std::string_view iterations, salt, stored_key;
  if (!split_at(text, ':', iterations) || !split_at(text, '$', salt) ||
      !split_at(text, ':', stored_key))
    return std::nullopt;
  const std::string_view server_key = text;

  ScramSecret secret;
  const auto count = parse_iterations(iterations);
  if (!count) return std::nullopt;
  secret.iterations = *count;
  auto decoded_salt = base64_decode(salt);
  if (!decoded_salt || decoded_salt->empty() || decoded_salt->size() > max_scram_salt_size)
    return std::nullopt;
  secret.salt = std::move(*decoded_salt);
  secret.salt_base64 = std::string(salt);
  if (!base64_decode_key(stored_key, secret.stored_key) ||
      !base64_decode_key(server_key, secret.server_key))
    return std::nullopt;
  return secret;
}

SecretBytes format_scram_secret(const ScramSecret& secret) {
  std::string text(scram_secret_prefix);
  text += std::to_string(secret.iterations);
  text += ':';
  text += secret.salt_base64;
  text += '$';
  text += base64_encode(secret.stored_key.bytes());
  text += ':';
  std::string server_key = base64_encode(secret.server_key.bytes());
  text += server_key;
  SecretBytes out(text);
  cleanse(server_key);
  cleanse(text);
  return out;
}

std::optional<ScramSecret> build_scram_secret(std::string_view password, ByteSpan salt,
                                              std::uint32_t iterations) {
  if (check_password_prep(password) != PasswordPrep::usable) return std::nullopt;
  if (salt.empty() || salt.size() > max_scram_salt_size || iterations == 0 ||
      iterations > static_cast<std::uint32_t>(INT_MAX))
    return std::nullopt;
  ScramSecret secret;
  secret.iterations = iterations;
  secret.salt.assign(salt.begin(), salt.end());
  secret.salt_base64 = base64_encode(salt);
  const SecretKey salted = salted_password(password, salt, iterations);
  secret.stored_key = stored_key_from(client_key_from(salted));
  secret.server_key = server_key_from(salted);
  return secret;
}

std::vector<std::byte> mock_scram_salt(std::string_view user, const SecretKey& mock_nonce) {
  std::string input(user);
  const auto nonce = mock_nonce.bytes();
  input.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  const SecretKey digest = sha256(as_bytes(input));
  cleanse(input);
  const auto bytes = digest.bytes().first(default_scram_salt_size);
  return {bytes.begin(), bytes.end()};
}

ScramSecret mock_scram_secret(std::string_view user, const SecretKey& mock_nonce,
                              std::uint32_t iterations) {
  ScramSecret secret;
  secret.iterations = iterations;
  secret.salt = mock_scram_salt(user, mock_nonce);
  secret.salt_base64 = base64_encode(secret.salt);
  return secret;  // zero StoredKey and ServerKey
}

}  // namespace seedproxy::auth
