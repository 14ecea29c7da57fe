// md5 challenge-response over stored md5 hashes.
#include "proxy/auth/md5_auth.hpp"

#include "proxy/auth/crypto.hpp"

namespace seedproxy::auth {

std::optional<Md5Secret> parse_md5_secret(std::string_view text) {
  if (text.size() != md5_secret_length || !text.starts_with(md5_prefix)) return std::nullopt;
  const auto hex = text.substr(md5_prefix.size());
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
  return Md5Secret(SecretBytes(hex));
}

Md5Secret md5_secret_from_password(std::string_view password, std::string_view user) {
  return Md5Secret(md5_hex({as_bytes(password), as_bytes(user)}));
}

Md5Secret mock_md5_secret(std::string_view user, const SecretKey& mock_nonce) {
  return Md5Secret(md5_hex({as_bytes(user), mock_nonce.bytes()}));
}

SecretBytes md5_response(const Md5Secret& secret, const Md5Salt& salt) {
  const SecretBytes hex = md5_hex({as_bytes(secret.hex()), ByteSpan(salt)});
  std::string text(md5_prefix);
  text += hex.text();
  SecretBytes out(text);
  cleanse(text);
  return out;
}

bool verify_md5_response(const Md5Secret& secret, const Md5Salt& salt,
                         std::string_view client_response) {
  const SecretBytes expected = md5_response(secret, salt);
  return constant_time_equal(expected.text(), client_response);
}

bool random_md5_salt(Md5Salt& salt) noexcept { return fill_random(salt); }

}  // namespace seedproxy::auth
