// The one gateway to PostgreSQL's own parser (libpg_query): SQL text in, its JSON parse tree (read
// into a JsonTree) and token boundaries (lex_sql) out. No other file includes pg_query.h.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/parse/json_tree.hpp"
#include "rewriter/parse/sql_lexer.hpp"

namespace seedproxy::rewriter {

struct ParseFailure {
  std::string message;
  int position = 0;  // 1-based character position, 0 when unknown
  std::string detail;
  // Empty for a text PostgreSQL rejects itself (its own error is the one to show). Set when the
  // proxy could not parse a text PostgreSQL might accept: the statement must be refused with
  // this SQLSTATE (54001 for a text too large for the parser's stack budget).
  std::string sqlstate;
};

struct ParsedSql {
  JsonTree tree;  // {"version":…, "stmts":[{"stmt":{…}, "stmt_location":…, "stmt_len":…}]}
  std::vector<Token> tokens;
  std::optional<ParseFailure> failure;
};

// Parses `sql` (which need not be NUL-terminated) and lexes its tokens (lex_sql). PostgreSQL's
// parser recurses once per level of the tree, and a text can nest a level every two bytes
// (`a+1+1+…`), so a text over parse_on_caller_stack_bytes is parsed on a thread of its own whose
// stack is sized for the text; one over max_parse_bytes is not parsed (sqlstate 54001).
[[nodiscard]] ParsedSql parse_sql(std::string_view sql);

// parse_sql through a memo of the few texts this thread parsed last (each at most
// parse_memo_bytes): a session reads one client text up to three times (whether it may involve
// a seed, what its DDL changes, its rewrite), and parses it once.
[[nodiscard]] std::shared_ptr<const ParsedSql> parse_sql_shared(std::string_view sql);
inline constexpr std::size_t parse_memo_bytes = 16 * 1024;

// Stack libpg_query 15-4.0.0 needs per byte of text, worst case: it writes its JSON tree
// recursively, 128 bytes of stack a level, and `+1` adds a level per 2 bytes, so 64 bytes per
// byte (measured as the high-water mark of a pre-filled stack; right-nested forms stop at
// bison's 10,000-level limit, other left-nested ones cost less per byte). Doubled for the margin.
inline constexpr std::size_t parse_stack_bytes_per_text_byte = 128;
// Texts up to this size parse on the caller's thread: at most 1 MiB of its stack.
inline constexpr std::size_t parse_on_caller_stack_bytes = 8 * 1024;
// The largest text parsed at all: 4 MiB of text needs a 512 MiB stack (reserved, not committed).
// Sessions parse at most 1 MiB (their rewrite limit).
inline constexpr std::size_t max_parse_bytes = 4u << 20;

// libpg_query's own scanner (pg_query_scan), comments left out: slower than lex_sql, kept so the
// tests can check lex_sql against it. nullopt when the scanner reports an error.
[[nodiscard]] std::optional<std::vector<Token>> scan_with_libpg_query(std::string_view sql);

}  // namespace seedproxy::rewriter
