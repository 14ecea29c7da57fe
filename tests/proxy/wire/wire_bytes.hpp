// Helpers shared by the protocol tests: building wire bytes by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace seedproxy::test {

using ByteVector = std::vector<std::byte>;

inline void append_u32(ByteVector& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::byte>(value >> shift));
}

inline void append_u16(ByteVector& out, std::uint16_t value) {
  out.push_back(static_cast<std::byte>(value >> 8));
  out.push_back(static_cast<std::byte>(value));
}

inline void append_text(ByteVector& out, std::string_view text) {
  for (char c : text) out.push_back(static_cast<std::byte>(c));
}

// A message body built field by field: Body().cstring("s").u16(0).bytes().
class Body {
 public:
  Body& cstring(std::string_view text) {
    append_text(out_, text);
    out_.push_back(std::byte{0});
    return *this;
  }
  Body& text(std::string_view text) {  // no terminator
    append_text(out_, text);
    return *this;
  }
  Body& u8(std::uint8_t value) {
    out_.push_back(static_cast<std::byte>(value));
    return *this;
  }
  Body& u16(std::uint16_t value) {
    append_u16(out_, value);
    return *this;
  }
  Body& u32(std::uint32_t value) {
    append_u32(out_, value);
    return *this;
  }
  [[nodiscard]] const ByteVector& bytes() const noexcept { return out_; }
  // The whole message: type byte, length word, this body.
  [[nodiscard]] ByteVector message(char type) const {
    ByteVector out;
    out.push_back(static_cast<std::byte>(type));
    append_u32(out, static_cast<std::uint32_t>(out_.size() + 4));
    out.insert(out.end(), out_.begin(), out_.end());
    return out;
  }

 private:
  ByteVector out_;
};

// A typed message with `body` as its body.
inline ByteVector message(char type, std::string_view body) {
  ByteVector out;
  out.push_back(static_cast<std::byte>(type));
  append_u32(out, static_cast<std::uint32_t>(body.size() + 4));
  append_text(out, body);
  return out;
}

inline ByteVector concat(std::initializer_list<ByteVector> parts) {
  ByteVector out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

}  // namespace seedproxy::test
