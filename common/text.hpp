// Text helpers every layer shares: ASCII case folding, UTF-8 counting and cutting, FNV-1a.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace seedproxy::text {

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// `text` with ASCII letters folded to lower case (PostgreSQL's folding of unquoted names; other
// bytes, UTF-8 included, are kept).
[[nodiscard]] std::string ascii_lower(std::string_view text);

// Whether `a` and `b` are equal ignoring ASCII case.
[[nodiscard]] bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept;

// True when `needle` (lower case) occurs in `haystack` ignoring ASCII case.
[[nodiscard]] bool contains_ignoring_case(std::string_view haystack,
                                          std::string_view needle) noexcept;

// Whether `byte` continues a UTF-8 sequence (10xxxxxx).
[[nodiscard]] constexpr bool utf8_continuation(char byte) noexcept {
  return (static_cast<unsigned char>(byte) & 0xC0) == 0x80;
}

// Characters (UTF-8 code points) in `text`, as PostgreSQL counts error positions.
[[nodiscard]] std::size_t utf8_count(std::string_view text) noexcept;

// The longest prefix of `text` of at most `max_bytes` bytes that does not split a character.
[[nodiscard]] std::string_view utf8_cut(std::string_view text, std::size_t max_bytes) noexcept;

// Length of the well-formed UTF-8 sequence starting at text[at], or 0 when there is none
// (overlong forms, surrogates and code points past U+10FFFF are not well formed).
[[nodiscard]] std::size_t utf8_sequence_length(std::string_view text, std::size_t at) noexcept;

// 64-bit FNV-1a: a stable hash across runs, processes and machines (for names that persist).
[[nodiscard]] constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t hash = 14695981039346656037ULL;
  for (const char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ULL;
  }
  return hash;
}

}  // namespace seedproxy::text
