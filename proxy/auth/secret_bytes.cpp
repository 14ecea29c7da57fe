// Wiping and constant-time comparison of secrets, backed by OpenSSL.
#include "proxy/auth/secret_bytes.hpp"

#include <openssl/crypto.h>

#include <algorithm>

namespace seedproxy::auth {

void cleanse(std::span<std::byte> bytes) noexcept {
  if (!bytes.empty()) OPENSSL_cleanse(bytes.data(), bytes.size());
}

void cleanse(std::string& text) noexcept {
  if (!text.empty()) OPENSSL_cleanse(text.data(), text.size());
}

bool constant_time_equal(ByteSpan a, ByteSpan b) noexcept {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  return constant_time_equal(as_bytes(a), as_bytes(b));
}

SecretBytes::SecretBytes(ByteSpan bytes) : size_(bytes.size()) {
  if (size_ == 0) return;
  data_ = std::make_unique<std::byte[]>(size_);
  std::copy(bytes.begin(), bytes.end(), data_.get());
}

SecretBytes& SecretBytes::operator=(const SecretBytes& other) {
  if (this != &other) {
    SecretBytes copy(other);
    *this = std::move(copy);
  }
  return *this;
}

SecretBytes::SecretBytes(SecretBytes&& other) noexcept
    : data_(std::move(other.data_)), size_(other.size_) {
  other.size_ = 0;
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    wipe();
    data_ = std::move(other.data_);
    size_ = other.size_;
    other.size_ = 0;
  }
  return *this;
}

void SecretBytes::wipe() noexcept {
  if (data_) cleanse(std::span<std::byte>(data_.get(), size_));
  data_.reset();
  size_ = 0;
}

bool SecretKey::assign(ByteSpan bytes) noexcept {
  if (bytes.size() != size) {
    bytes_.fill(std::byte{0});
    return false;
  }
  std::copy(bytes.begin(), bytes.end(), bytes_.begin());
  return true;
}

}  // namespace seedproxy::auth
