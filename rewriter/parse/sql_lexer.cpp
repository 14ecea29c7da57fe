// A hand-written scanner after PostgreSQL 15's scan.l: token extents and the little the resolver
// asks about a token (reserved keyword, UESCAPE, its character when one byte long).
#include "rewriter/parse/sql_lexer.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "common/text.hpp"

namespace seedproxy::rewriter {
namespace {

// PostgreSQL 15's RESERVED_KEYWORD entries of kwlist.h, sorted.
constexpr std::array<std::string_view, 77> reserved_keywords = {"all",          "analyse",
                                                                "analyze",      "and",
                                                                "any",          "array",
                                                                "as",           "asc",
                                                                "asymmetric",   "both",
                                                                "case",         "cast",
                                                                "check",        "collate",
                                                                "column",       "constraint",
                                                                "create",       "current_catalog",
                                                                "current_date", "current_role",
                                                                "current_time", "current_timestamp",
                                                                "current_user", "default",
                                                                "deferrable",   "desc",
                                                                "distinct",     "do",
                                                                "else",         "end",
                                                                "except",       "false",
                                                                "fetch",        "for",
                                                                "foreign",      "from",
                                                                "grant",        "group",
                                                                "having",       "in",
                                                                "initially",    "intersect",
                                                                "into",         "lateral",
                                                                "leading",      "limit",
                                                                "localtime",    "localtimestamp",
                                                                "not",          "null",
                                                                "offset",       "on",
                                                                "only",         "or",
                                                                "order",        "placing",
                                                                "primary",      "references",
                                                                "returning",    "select",
                                                                "session_user", "some",
                                                                "symmetric",    "table",
                                                                "then",         "to",
                                                                "trailing",     "true",
                                                                "union",        "unique",
                                                                "user",         "using",
                                                                "variadic",     "when",
                                                                "where",        "window",
                                                                "with"};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }
bool is_newline(char c) { return c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}
bool is_ident_cont(char c) { return is_ident_start(c) || is_digit(c) || c == '$'; }
bool is_dollar_tag_cont(char c) { return is_ident_start(c) || is_digit(c); }
bool is_op_char(char c) { return c != 0 && std::strchr("~!@#^&|`?+-*/%<>=", c) != nullptr; }

class Lexer {
 public:
  explicit Lexer(std::string_view sql) : s_(sql.substr(0, sql.find('\0'))) {}

  // Every token, or (`constants_only`) only those spelling a constant.
  std::vector<Token> run(bool constants_only) {
    std::vector<Token> tokens;
    constants_only_ = constants_only;
    tokens.reserve(constants_only ? 8 : s_.size() / 4 + 4);
    std::size_t i = 0;
    while (true) {
      i = skip_space_and_comments(i);
      if (i >= s_.size()) break;
      const std::size_t start = i;
      TokenKind kind = TokenKind::other;
      Literal literal = Literal::none;
      i = token_end(i, kind, literal);
      if (constants_only && literal == Literal::none) continue;
      Token t{static_cast<std::int32_t>(start), static_cast<std::int32_t>(i), 0, kind, literal};
      if (i - start == 1) t.single = s_[start];
      tokens.push_back(t);
    }
    return tokens;
  }

 private:
  [[nodiscard]] char at(std::size_t i) const { return i < s_.size() ? s_[i] : '\0'; }

  // Past the `--` comment starting at i (the newline is not part of it).
  [[nodiscard]] std::size_t line_comment_end(std::size_t i) const {
    while (i < s_.size() && !is_newline(s_[i])) ++i;
    return i;
  }

  // Past the (nested) `/* */` comment starting at i.
  [[nodiscard]] std::size_t block_comment_end(std::size_t i) const {
    int depth = 0;
    while (i < s_.size()) {
      if (s_[i] == '/' && at(i + 1) == '*') {
        ++depth;
        i += 2;
      } else if (s_[i] == '*' && at(i + 1) == '/') {
        i += 2;
        if (--depth == 0) return i;
      } else {
        ++i;
      }
    }
    return i;
  }

  [[nodiscard]] std::size_t skip_space_and_comments(std::size_t i) const {
    while (i < s_.size()) {
      if (is_space(s_[i])) {
        ++i;
      } else if (s_[i] == '-' && at(i + 1) == '-') {
        i = line_comment_end(i);
      } else if (s_[i] == '/' && at(i + 1) == '*') {
        i = block_comment_end(i);
      } else {
        break;
      }
    }
    return i;
  }

  // After a string's closing quote: whitespace holding a newline followed by another quote
  // continues the same literal (scan.l's quotecontinue; libpg_query's scanner allows no comment
  // in between, so neither does this one).
  [[nodiscard]] std::size_t continuation(std::size_t i) const {
    bool newline = false;
    for (; i < s_.size() && is_space(s_[i]); ++i) newline = newline || is_newline(s_[i]);
    return newline && at(i) == '\'' ? i + 1 : std::string_view::npos;
  }

  // Past the quoted literal whose body starts at i (just after the opening quote), following
  // continuations; `backslash` for E'...' strings.
  [[nodiscard]] std::size_t string_end(std::size_t i, bool backslash) const {
    while (i < s_.size()) {
      const char c = s_[i];
      if (backslash && c == '\\') {
        i += 2;
      } else if (c == '\'') {
        if (at(i + 1) == '\'') {
          i += 2;
          continue;
        }
        const std::size_t next = continuation(i + 1);
        if (next == std::string_view::npos) return i + 1;
        i = next;
      } else {
        ++i;
      }
    }
    return s_.size();
  }

  // Past the "..." identifier whose body starts at i.
  [[nodiscard]] std::size_t quoted_identifier_end(std::size_t i) const {
    while (i < s_.size()) {
      if (s_[i] == '"') {
        if (at(i + 1) != '"') return i + 1;
        i += 2;
      } else {
        ++i;
      }
    }
    return s_.size();
  }

  [[nodiscard]] std::size_t number_end(std::size_t i) const {
    while (is_digit(at(i))) ++i;
    // "1..5" is the integer 1 and "..": a decimal point never precedes another dot.
    if (at(i) == '.' && at(i + 1) != '.') {
      ++i;
      while (is_digit(at(i))) ++i;
    }
    if ((at(i) == 'e' || at(i) == 'E') &&
        (is_digit(at(i + 1)) || ((at(i + 1) == '+' || at(i + 1) == '-') && is_digit(at(i + 2))))) {
      i += 2;
      while (is_digit(at(i))) ++i;
    }
    return i;
  }

  // An operator made of op_chars, cut at an embedded comment start and with trailing + and -
  // dropped unless it holds one of ~!@#^&|`?% (so "*-1" lexes as "*", "-", "1").
  [[nodiscard]] std::size_t operator_end(std::size_t i) const {
    std::size_t end = i;
    while (is_op_char(at(end))) ++end;
    for (std::size_t k = i; k + 1 < end; ++k)
      if ((s_[k] == '/' && s_[k + 1] == '*') || (s_[k] == '-' && s_[k + 1] == '-')) {
        end = k;
        break;
      }
    std::size_t length = end - i;
    if (length > 1 && (s_[i + length - 1] == '+' || s_[i + length - 1] == '-')) {
      const bool keeps = std::any_of(s_.begin() + static_cast<std::ptrdiff_t>(i),
                                     s_.begin() + static_cast<std::ptrdiff_t>(i + length - 1),
                                     [](char c) { return std::strchr("~!@#^&|`?%", c); });
      if (!keeps)
        while (length > 1 && (s_[i + length - 1] == '+' || s_[i + length - 1] == '-')) --length;
    }
    return i + length;
  }

  [[nodiscard]] TokenKind word_kind(std::size_t start, std::size_t end) const {
    const std::size_t length = end - start;
    if (length < 2 || length > 17) return TokenKind::identifier;
    char folded[17];
    for (std::size_t k = 0; k < length; ++k) folded[k] = text::ascii_lower(s_[start + k]);
    const std::string_view word(folded, length);
    if (word == "uescape") return TokenKind::uescape;
    return std::binary_search(reserved_keywords.begin(), reserved_keywords.end(), word)
               ? TokenKind::reserved_keyword
               : TokenKind::identifier;
  }

  // ICONST when the digits fit in a 32-bit int, as scan.l's process_integer_literal decides.
  [[nodiscard]] Literal number_kind(std::size_t start, std::size_t end) const {
    std::uint64_t value = 0;
    for (std::size_t k = start; k < end; ++k) {
      if (!is_digit(s_[k])) return Literal::numeric;
      value = value * 10 + static_cast<std::uint64_t>(s_[k] - '0');
      if (value > 2147483647u) return Literal::numeric;
    }
    return Literal::integer;
  }

  // Past the token starting at i; sets its kind, and the literal it spells.
  std::size_t token_end(std::size_t i, TokenKind& kind, Literal& literal) const {
    const char c = s_[i];
    const char next = at(i + 1);
    if (is_ident_start(c)) {
      const char folded = text::ascii_lower(c);
      if (next == '\'') {
        if (folded == 'e') {
          literal = Literal::string;
          return string_end(i + 2, true);
        }
        if (folded == 'b' || folded == 'x') {
          literal = folded == 'b' ? Literal::bit_string : Literal::hex_string;
          return string_end(i + 2, false);
        }
        if (folded == 'n') {
          kind = TokenKind::identifier;  // NCHAR, a keyword of its own before the string
          return i + 1;
        }
      }
      if (folded == 'u' && next == '&') {
        if (at(i + 2) == '\'') {
          literal = Literal::unicode_string;
          return string_end(i + 3, false);
        }
        if (at(i + 2) == '"') {
          kind = TokenKind::identifier;
          return quoted_identifier_end(i + 3);
        }
      }
      std::size_t end = i + 1;
      while (is_ident_cont(at(end))) ++end;
      kind = constants_only_ ? TokenKind::identifier : word_kind(i, end);
      return end;
    }
    if (c == '"') {
      kind = TokenKind::identifier;
      return quoted_identifier_end(i + 1);
    }
    if (c == '\'') {
      literal = Literal::string;
      return string_end(i + 1, false);
    }
    if (is_digit(c) || (c == '.' && is_digit(next))) {
      const std::size_t end = number_end(i);
      literal = number_kind(i, end);
      return end;
    }
    if (c == '$') {
      if (is_digit(next)) {  // a parameter $n
        std::size_t end = i + 1;
        while (is_digit(at(end))) ++end;
        return end;
      }
      std::size_t tag_end = i + 1;
      if (is_ident_start(next))
        while (is_dollar_tag_cont(at(tag_end))) ++tag_end;
      if (at(tag_end) == '$') {  // $tag$ ... $tag$
        const std::string_view delimiter = s_.substr(i, tag_end + 1 - i);
        const std::size_t close = s_.find(delimiter, tag_end + 1);
        literal = Literal::string;
        return close == std::string_view::npos ? s_.size() : close + delimiter.size();
      }
      return i + 1;
    }
    if (c == ':' && (next == ':' || next == '=')) return i + 2;
    if (c == '.' && next == '.') return i + 2;
    if (is_op_char(c)) return operator_end(i);
    return i + 1;  // , ( ) [ ] . ; : and anything else
  }

  std::string_view s_;
  bool constants_only_ = false;  // keyword kinds are not needed
};

}  // namespace

std::vector<Token> lex_sql(std::string_view sql) { return Lexer(sql).run(false); }

std::vector<Token> lex_constants(std::string_view sql) { return Lexer(sql).run(true); }

}  // namespace seedproxy::rewriter
