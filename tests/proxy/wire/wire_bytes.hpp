// Helpers shared by the protocol tests: building wire bytes by hand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace seedproxy::test {

using ByteVector = std::vector<std::byte>;

inline void append_u32(ByteVector& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::byte>(value >> shift));
}

inline void append_text(ByteVector& out, std::string_view text) {
  for (char c : text) out.push_back(static_cast<std::byte>(c));
}

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
