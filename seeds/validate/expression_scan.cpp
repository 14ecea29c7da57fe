// Lexical scanning of pasted expression and type text: literals, quoted names, comments, nesting.
#include "seeds/validate/expression_scan.hpp"

#include <array>

#include "common/text.hpp"

namespace seedproxy::seeds {
namespace {

[[nodiscard]] bool identifier_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || u >= 0x80;
}

[[nodiscard]] bool tag_start_char(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || u >= 0x80;
}

[[nodiscard]] bool space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// The first word of `text` after leading spaces, lower case.
[[nodiscard]] std::string first_word(std::string_view text) {
  std::size_t at = 0;
  while (at < text.size() && space(text[at])) ++at;
  std::string word;
  while (at < text.size() && identifier_char(text[at])) word += text::ascii_lower(text[at++]);
  return word;
}

}  // namespace

ScanResult scan_pasted_text(std::string_view text, bool backslash_strings) {
  ScanResult result;
  auto refuse = [&](std::string cause, std::size_t offset) {
    result.problem = ScanProblem{std::move(cause), offset};
    return result;
  };

  std::size_t at = 0;
  while (at < text.size() && space(text[at])) ++at;
  if (at == text.size()) return refuse("is empty", 0);
  for (const char* keyword : std::array{"select", "with", "values", "table"})
    if (first_word(text) == keyword)
      return refuse(
          "is a query, not an expression; write a scalar subquery in parentheses: (SELECT ...)",
          at);

  int depth = 0;
  std::size_t last_open = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    const bool after_word = i > 0 && identifier_char(text[i - 1]);
    if (c == '\0') return refuse("contains a NUL byte", i);
    if (c == ';') return refuse("contains a statement separator ';'", i);
    if (c == '-' && next == '-') return refuse("contains a comment ('--')", i);
    if (c == '/' && next == '*') return refuse("contains a comment ('/*')", i);
    if (c == '(') {
      if (depth++ == 0) last_open = i;
    } else if (c == ')') {
      if (--depth < 0) return refuse("closes a parenthesis it did not open", i);
    } else if (c == ',' && depth == 0) {
      return refuse("is a list; a seed has exactly one expression", i);
    } else if (c == '"') {
      std::size_t j = i + 1;
      for (;; ++j) {
        if (j >= text.size()) return refuse("has an unterminated quoted identifier", i);
        if (text[j] == '"') {
          if (j + 1 < text.size() && text[j + 1] == '"') {
            ++j;
            continue;
          }
          break;
        }
      }
      i = j;
    } else if (c == '\'') {
      // E'...' (and every string when standard_conforming_strings is off) knows backslashes.
      std::size_t begin = i;
      bool escapes = backslash_strings;
      if (i > 0 && (text[i - 1] == 'e' || text[i - 1] == 'E') &&
          !(i > 1 && identifier_char(text[i - 2]))) {
        escapes = true;
        begin = i - 1;
      }
      StringLiteral literal{begin, {}};
      std::size_t j = i + 1;
      for (;; ++j) {
        if (j >= text.size()) return refuse("has an unterminated string literal", i);
        if (escapes && text[j] == '\\' && j + 1 < text.size()) {
          literal.value += text[++j];
          continue;
        }
        if (text[j] == '\'') {
          if (j + 1 < text.size() && text[j + 1] == '\'') {
            literal.value += '\'';
            ++j;
            continue;
          }
          break;
        }
        literal.value += text[j];
      }
      result.literals.push_back(std::move(literal));
      i = j;
    } else if (c == '$' && !after_word) {
      if (next >= '0' && next <= '9')
        return refuse("contains a parameter placeholder; a seed's expression takes no parameters",
                      i);
      // $tag$ ... $tag$ or $$ ... $$
      std::size_t j = i + 1;
      if (j < text.size() && tag_start_char(text[j]))
        while (j < text.size() && identifier_char(text[j]) && text[j] != '$') ++j;
      if (j < text.size() && text[j] == '$') {
        const std::string_view tag = text.substr(i, j - i + 1);
        const std::size_t close = text.find(tag, j + 1);
        if (close == std::string_view::npos)
          return refuse("has an unterminated dollar-quoted string", i);
        result.literals.push_back({i, std::string(text.substr(j + 1, close - j - 1))});
        i = close + tag.size() - 1;
      }
    }
  }
  if (depth > 0) return refuse("leaves a parenthesis open", last_open);
  return result;
}

}  // namespace seedproxy::seeds
