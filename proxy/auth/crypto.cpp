// SHA-256, HMAC, PBKDF2, MD5 and random bytes through OpenSSL 3.
#include "proxy/auth/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <climits>
#include <memory>
#include <stdexcept>

namespace seedproxy::auth {
namespace {

[[noreturn]] void openssl_failed(const char* what) {
  throw std::runtime_error(std::string("OpenSSL failed: ") + what);
}

struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

int checked_int(std::size_t size) {
  if (size > static_cast<std::size_t>(INT_MAX)) openssl_failed("input too large");
  return static_cast<int>(size);
}

}  // namespace

SecretKey sha256(ByteSpan data) {
  SecretKey out;
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data().data()),
                 &length, EVP_sha256(), nullptr) != 1 ||
      length != SecretKey::size)
    openssl_failed("SHA-256");
  return out;
}

SecretKey hmac_sha256(ByteSpan key, ByteSpan data) {
  SecretKey out;
  unsigned int length = 0;
  // An empty key still needs a valid pointer.
  static const unsigned char empty = 0;
  const auto* key_data = key.empty() ? &empty : reinterpret_cast<const unsigned char*>(key.data());
  if (HMAC(EVP_sha256(), key_data, checked_int(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(),
           reinterpret_cast<unsigned char*>(out.data().data()), &length) == nullptr ||
      length != SecretKey::size)
    openssl_failed("HMAC-SHA-256");
  return out;
}

SecretKey pbkdf2_sha256(ByteSpan password, ByteSpan salt, std::uint32_t iterations) {
  if (iterations == 0 || iterations > static_cast<std::uint32_t>(INT_MAX))
    openssl_failed("PBKDF2 iteration count out of range");
  SecretKey out;
  static const char empty = 0;
  const auto* pass = password.empty() ? &empty : reinterpret_cast<const char*>(password.data());
  static const unsigned char no_salt = 0;
  const auto* salt_data =
      salt.empty() ? &no_salt : reinterpret_cast<const unsigned char*>(salt.data());
  if (PKCS5_PBKDF2_HMAC(pass, checked_int(password.size()), salt_data, checked_int(salt.size()),
                        static_cast<int>(iterations), EVP_sha256(), SecretKey::size,
                        reinterpret_cast<unsigned char*>(out.data().data())) != 1)
    openssl_failed("PBKDF2");
  return out;
}

SecretBytes md5_hex(std::initializer_list<ByteSpan> parts) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) openssl_failed("MD5 init");
  for (const auto part : parts)
    if (!part.empty() && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1)
      openssl_failed("MD5 update");
  std::array<unsigned char, 16> digest{};
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &length) != 1 || length != digest.size())
    openssl_failed("MD5 final");
  static constexpr char hex[] = "0123456789abcdef";
  std::array<char, 32> text{};
  for (std::size_t i = 0; i < digest.size(); ++i) {
    text[2 * i] = hex[digest[i] >> 4];
    text[2 * i + 1] = hex[digest[i] & 0x0f];
  }
  SecretBytes out(std::string_view(text.data(), text.size()));
  cleanse(std::as_writable_bytes(std::span(digest)));
  cleanse(std::as_writable_bytes(std::span(text)));
  return out;
}

bool fill_random(std::span<std::byte> out) noexcept {
  if (out.empty()) return true;
  if (out.size() > static_cast<std::size_t>(INT_MAX)) return false;
  return RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) ==
         1;
}

}  // namespace seedproxy::auth
