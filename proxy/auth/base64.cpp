// Strict base64 encoding and decoding without intermediate copies of secret bytes.
#include "proxy/auth/base64.hpp"

#include <array>
#include <cstdint>

namespace seedproxy::auth {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<std::int8_t, 256> make_lookup() {
  std::array<std::int8_t, 256> table{};
  for (auto& entry : table) entry = -1;
  for (int i = 0; i < 64; ++i)
    table[static_cast<unsigned char>(alphabet[i])] = static_cast<std::int8_t>(i);
  return table;
}

constexpr auto lookup = make_lookup();

}  // namespace

std::string base64_encode(ByteSpan bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const auto word = (std::to_integer<std::uint32_t>(bytes[i]) << 16) |
                      (std::to_integer<std::uint32_t>(bytes[i + 1]) << 8) |
                      std::to_integer<std::uint32_t>(bytes[i + 2]);
    out += alphabet[(word >> 18) & 63];
    out += alphabet[(word >> 12) & 63];
    out += alphabet[(word >> 6) & 63];
    out += alphabet[word & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 0) return out;
  std::uint32_t word = std::to_integer<std::uint32_t>(bytes[i]) << 16;
  if (rest == 2) word |= std::to_integer<std::uint32_t>(bytes[i + 1]) << 8;
  out += alphabet[(word >> 18) & 63];
  out += alphabet[(word >> 12) & 63];
  out += rest == 2 ? alphabet[(word >> 6) & 63] : '=';
  out += '=';
  return out;
}

std::optional<std::size_t> base64_decoded_size(std::string_view text) noexcept {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') padding = text[text.size() - 2] == '=' ? 2 : 1;
  for (std::size_t i = 0; i < text.size() - padding; ++i)
    if (lookup[static_cast<unsigned char>(text[i])] < 0) return std::nullopt;
  return text.size() / 4 * 3 - padding;
}

bool base64_decode_into(std::string_view text, std::span<std::byte> out) noexcept {
  const auto size = base64_decoded_size(text);
  if (!size || *size != out.size()) return false;
  std::size_t at = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t word = 0;
    int symbols = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      word <<= 6;
      if (c == '=') continue;
      word |= static_cast<std::uint32_t>(lookup[static_cast<unsigned char>(c)]);
      ++symbols;
    }
    for (int k = 0; k < symbols - 1; ++k)
      out[at++] = static_cast<std::byte>((word >> (16 - 8 * k)) & 0xff);
  }
  return true;
}

std::optional<std::vector<std::byte>> base64_decode(std::string_view text) {
  const auto size = base64_decoded_size(text);
  if (!size) return std::nullopt;
  std::vector<std::byte> out(*size);
  if (!base64_decode_into(text, out)) return std::nullopt;
  return out;
}

bool base64_decode_key(std::string_view text, SecretKey& out) noexcept {
  return base64_decode_into(text, out.data());
}

}  // namespace seedproxy::auth
