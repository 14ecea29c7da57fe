// Classifying stored secrets, and the SCRAM secret standing in for a plain-text password.
#include "proxy/auth/stored_secret.hpp"

namespace seedproxy::auth {

std::optional<StoredSecret> StoredSecret::classify(std::string_view text, std::string& error) {
  StoredSecret out;
  if (text.empty()) return out;
  if (auto md5 = parse_md5_secret(text)) {
    out.value_ = std::move(*md5);
    return out;
  }
  if (text.starts_with(scram_secret_prefix)) {
    auto scram = parse_scram_secret(text);
    if (!scram) {
      error = "malformed SCRAM-SHA-256 secret";
      return std::nullopt;
    }
    out.value_ = std::move(*scram);
    return out;
  }
  out.value_ = SecretBytes(text);
  return out;
}

SecretKind StoredSecret::kind() const noexcept {
  switch (value_.index()) {
    case 1:
      return SecretKind::scram_sha_256;
    case 2:
      return SecretKind::md5;
    case 3:
      return SecretKind::plain_text;
    default:
      return SecretKind::none;
  }
}

std::optional<ScramSecret> scram_secret_for_password(std::string_view password,
                                                     std::string_view user,
                                                     const SecretKey& mock_nonce,
                                                     std::uint32_t iterations) {
  return build_scram_secret(password, mock_scram_salt(user, mock_nonce), iterations);
}

}  // namespace seedproxy::auth
