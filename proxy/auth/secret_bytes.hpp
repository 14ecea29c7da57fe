// Secret material that is wiped when dropped, and the constant-time comparison used for it.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace seedproxy::auth {

using ByteSpan = std::span<const std::byte>;

[[nodiscard]] inline ByteSpan as_bytes(std::string_view text) noexcept {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

// Overwrites memory with zeros in a way the optimizer cannot drop (OPENSSL_cleanse).
void cleanse(std::span<std::byte> bytes) noexcept;
// Wipes a string's contents (for buffers that held passwords, such as a userlist file's text).
void cleanse(std::string& text) noexcept;

// Equality whose running time depends only on the lengths, which are never secret here.
[[nodiscard]] bool constant_time_equal(ByteSpan a, ByteSpan b) noexcept;
[[nodiscard]] bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

// A variable-length secret (a password, an md5 hash): one heap block that never grows (so no
// stale copy is left behind by a reallocation), copied deeply and wiped on destruction.
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(ByteSpan bytes);
  explicit SecretBytes(std::string_view text) : SecretBytes(as_bytes(text)) {}
  SecretBytes(const SecretBytes& other) : SecretBytes(other.bytes()) {}
  SecretBytes& operator=(const SecretBytes& other);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  ~SecretBytes() { wipe(); }

  [[nodiscard]] ByteSpan bytes() const noexcept { return {data_.get(), size_}; }
  [[nodiscard]] std::string_view text() const noexcept {
    return {reinterpret_cast<const char*>(data_.get()), size_};
  }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

 private:
  void wipe() noexcept;

  std::unique_ptr<std::byte[]> data_;
  std::size_t size_ = 0;
};

// A 256-bit secret (SHA-256 sized: SCRAM keys, proofs, signatures, the mock nonce), wiped on
// destruction. Copies are plain array copies; each copy wipes itself.
class SecretKey {
 public:
  static constexpr std::size_t size = 32;

  SecretKey() noexcept { bytes_.fill(std::byte{0}); }
  SecretKey(const SecretKey&) = default;
  SecretKey& operator=(const SecretKey&) = default;
  ~SecretKey() { cleanse(bytes_); }

  [[nodiscard]] std::span<std::byte, size> data() noexcept { return bytes_; }
  [[nodiscard]] ByteSpan bytes() const noexcept { return bytes_; }

  // Copies exactly 32 bytes; false (and the key left zero) for any other length.
  [[nodiscard]] bool assign(ByteSpan bytes) noexcept;

  // Constant time.
  [[nodiscard]] bool operator==(const SecretKey& other) const noexcept {
    return constant_time_equal(bytes(), other.bytes());
  }

 private:
  std::array<std::byte, size> bytes_;
};

}  // namespace seedproxy::auth
