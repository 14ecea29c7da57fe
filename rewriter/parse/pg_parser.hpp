// The one gateway to PostgreSQL's own parser (libpg_query): SQL text in, its JSON parse tree (read
// into a JsonTree) and token boundaries (lex_sql) out. No other file includes pg_query.h.
#pragma once

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
};

struct ParsedSql {
  JsonTree tree;  // {"version":…, "stmts":[{"stmt":{…}, "stmt_location":…, "stmt_len":…}]}
  std::vector<Token> tokens;
  std::optional<ParseFailure> failure;
};

// Parses `sql` (which need not be NUL-terminated) and lexes its tokens (lex_sql).
[[nodiscard]] ParsedSql parse_sql(std::string_view sql);

// libpg_query's own scanner (pg_query_scan), comments left out: slower than lex_sql, kept so the
// tests can check lex_sql against it. nullopt when the scanner reports an error.
[[nodiscard]] std::optional<std::vector<Token>> scan_with_libpg_query(std::string_view sql);

}  // namespace seedproxy::rewriter
