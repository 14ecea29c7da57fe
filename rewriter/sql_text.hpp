// Small text helpers for generated SQL: identifier quoting and case-insensitive search.
#pragma once

#include <string>
#include <string_view>

namespace seedproxy::rewriter {

// Always quotes, doubling embedded quotes, so generated SQL never depends on case or keywords.
[[nodiscard]] inline std::string quote_identifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

[[nodiscard]] inline char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// True when `needle` (lower case) occurs in `haystack` ignoring ASCII case.
[[nodiscard]] inline bool contains_ignoring_case(std::string_view haystack,
                                                 std::string_view needle) noexcept {
  if (needle.empty()) return true;
  if (needle.size() > haystack.size()) return false;
  const char first = needle.front();
  const std::size_t last_start = haystack.size() - needle.size();
  for (std::size_t i = 0; i <= last_start; ++i) {
    if (ascii_lower(haystack[i]) != first) continue;
    std::size_t j = 1;
    while (j < needle.size() && ascii_lower(haystack[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

}  // namespace seedproxy::rewriter
