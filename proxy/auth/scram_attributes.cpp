// The SCRAM attribute cursor and PostgreSQL's sanitizing of bytes quoted in error details.
#include "proxy/auth/scram_attributes.hpp"

#include <cstdio>

namespace seedproxy::auth {

bool is_scram_printable(std::string_view text) noexcept {
  if (text.empty()) return false;
  for (char c : text)
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  return true;
}

std::string sanitize_char(char c) {
  if (c >= 0x21 && c <= 0x7e) return std::string("'") + c + "'";
  char buffer[8];
  std::snprintf(buffer, sizeof buffer, "0x%02x", static_cast<unsigned char>(c));
  return buffer;
}

std::string sanitize_str(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 30)) out += (c >= 0x21 && c <= 0x7e) ? c : '?';
  return out;
}

std::string_view AttributeReader::value_from(std::size_t start) noexcept {
  std::size_t end = text_.find(',', start);
  if (end == std::string_view::npos) end = text_.size();
  const auto value = text_.substr(start, end - start);
  at_ = end < text_.size() ? end + 1 : end;  // a trailing comma is consumed, as PostgreSQL does
  return value;
}

std::optional<std::string_view> AttributeReader::read(char name, std::string& detail) {
  if (peek() != name) {
    detail = std::string("Expected attribute \"") + name + "\" but found \"" +
             sanitize_char(peek()) + "\".";
    return std::nullopt;
  }
  if (at_ + 1 >= text_.size() || text_[at_ + 1] != '=') {
    detail = std::string("Expected character \"=\" for attribute \"") + name + "\".";
    return std::nullopt;
  }
  return value_from(at_ + 2);
}

std::optional<AttributeReader::Attribute> AttributeReader::read_any(std::string& detail) {
  const char name = peek();
  if (at_end()) {
    detail = "Attribute expected, but found end of string.";
    return std::nullopt;
  }
  if (!((name >= 'A' && name <= 'Z') || (name >= 'a' && name <= 'z'))) {
    detail = "Attribute expected, but found invalid character \"" + sanitize_char(name) + "\".";
    return std::nullopt;
  }
  if (at_ + 1 >= text_.size() || text_[at_ + 1] != '=') {
    detail = std::string("Expected character \"=\" for attribute \"") + name + "\".";
    return std::nullopt;
  }
  return Attribute{name, value_from(at_ + 2)};
}

}  // namespace seedproxy::auth
