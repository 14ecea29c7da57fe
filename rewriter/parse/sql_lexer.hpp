// Token boundaries of SQL text the way PostgreSQL's scanner (scan.l) draws them, so the resolver
// can find where a reference ends. Only for text PostgreSQL has already parsed successfully.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace seedproxy::rewriter {

enum class TokenKind : std::uint8_t {
  other,
  identifier,        // plain, quoted or U&"..." identifier, or a keyword that is not reserved
  reserved_keyword,  // FROM, WHERE, ORDER, ...
  uescape,           // the UESCAPE of U&"..." UESCAPE '!'
};

// The constant a token spells, by the scanner's token type (an integer that does not fit in 32
// bits is PostgreSQL's FCONST, so `numeric`). `string` covers '...', E'...' and $tag$...$tag$.
enum class Literal : std::uint8_t {
  none,
  integer,
  numeric,
  string,
  bit_string,      // B'...'
  hex_string,      // X'...'
  unicode_string,  // U&'...'
};

struct Token {
  std::int32_t start = 0;  // byte offsets into the SQL text, end exclusive
  std::int32_t end = 0;
  char single = 0;  // the character of a one-byte token ('.', '*', '(', ...)
  TokenKind kind = TokenKind::other;
  Literal literal = Literal::none;
};

// The syntactic tokens of `sql` in order; comments and whitespace are left out. Text after a NUL
// byte is ignored, as libpg_query (which reads C strings) ignores it.
[[nodiscard]] std::vector<Token> lex_sql(std::string_view sql);

// The tokens of lex_sql(sql) that spell a constant (Token::literal set), in order.
[[nodiscard]] std::vector<Token> lex_constants(std::string_view sql);

}  // namespace seedproxy::rewriter
