// The one gateway to PostgreSQL's own parser (libpg_query): SQL text in, a JSON parse tree and
// token boundaries out. No other file includes pg_query.h.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::rewriter {

enum class TokenKind : std::uint8_t {
  other,
  identifier,        // plain, quoted or U&"..." identifier
  keyword,           // unreserved, column-name or type/function-name keyword
  reserved_keyword,  // FROM, WHERE, ORDER, ...
  uescape,           // the UESCAPE of U&"..." UESCAPE '!'
};

struct Token {
  std::int32_t start = 0;  // byte offsets into the SQL text, end exclusive
  std::int32_t end = 0;
  char single = 0;  // the character for one-character operator tokens ('.', '*', '(', ...)
  TokenKind kind = TokenKind::other;
};

struct ParseFailure {
  std::string message;
  int position = 0;  // 1-based character position, 0 when unknown
};

struct ParsedSql {
  nlohmann::json tree;  // {"version":…, "stmts":[{"stmt":{…}, "stmt_location":…, "stmt_len":…}]}
  std::vector<Token> tokens;
  std::optional<ParseFailure> failure;
};

// Parses `sql` (which need not be NUL-terminated) and scans its tokens.
[[nodiscard]] ParsedSql parse_sql(std::string_view sql);

}  // namespace seedproxy::rewriter
