// RAII use of libpg_query's parser (and, for the tests, its scanner); results copied out and freed
// at once.
#include "rewriter/parse/pg_parser.hpp"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <array>

#include "common/fixed_stack.hpp"
#include "common/sqlstate.hpp"

namespace seedproxy::rewriter {
namespace {

struct ParseResultGuard {
  PgQueryParseResult result;
  ~ParseResultGuard() { pg_query_free_parse_result(result); }
};

struct ScanResultGuard {
  PgQueryScanResult result;
  ~ScanResultGuard() { pg_query_free_scan_result(result); }
};

struct UnpackedScanGuard {
  PgQuery__ScanResult* result;
  ~UnpackedScanGuard() {
    if (result) pg_query__scan_result__free_unpacked(result, nullptr);
  }
};

// libpg_query reports U&"..." and U&'...' tokens as one byte long; their real end is the
// closing quote (a doubled quote is part of the text).
std::int32_t unicode_token_end(std::string_view text, std::int32_t start) {
  const std::size_t open = static_cast<std::size_t>(start) + 2;
  if (open >= text.size()) return start + 1;
  const char quote = text[open];
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (text[i] != quote) continue;
    if (i + 1 < text.size() && text[i + 1] == quote) {
      ++i;
      continue;
    }
    return static_cast<std::int32_t>(i + 1);
  }
  return static_cast<std::int32_t>(text.size());
}

TokenKind kind_of(const PgQuery__ScanToken& token) {
  switch (token.token) {
    case PG_QUERY__TOKEN__IDENT:
    case PG_QUERY__TOKEN__UIDENT:
      return TokenKind::identifier;
    case PG_QUERY__TOKEN__UESCAPE:
      return TokenKind::uescape;
    default:
      break;
  }
  if (token.keyword_kind == PG_QUERY__KEYWORD_KIND__RESERVED_KEYWORD)
    return TokenKind::reserved_keyword;
  if (token.keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD) return TokenKind::identifier;
  return TokenKind::other;
}

ParseFailure stack_depth_exceeded(std::string detail) {
  return ParseFailure{"stack depth limit exceeded", 0, std::move(detail),
                      sqlstate::statement_too_complex};
}

}  // namespace

ParsedSql parse_sql(std::string_view sql) {
  ParsedSql out;
  if (sql.size() > max_parse_bytes) {
    out.failure = stack_depth_exceeded("seedproxy parses statements of at most " +
                                       std::to_string(max_parse_bytes) + " bytes.");
    return out;
  }
  const std::string text(sql);  // libpg_query wants a NUL-terminated string
  ParseResultGuard parsed{};
  // On a thread of its own, libpg_query frees that thread's memory context when the thread exits
  // (calling pg_query_exit() as well would free it twice).
  const auto parse = [&] { parsed.result = pg_query_parse(text.c_str()); };
  if (text.size() <= parse_on_caller_stack_bytes) {
    parse();
  } else if (!run_on_fixed_stack(text.size() * parse_stack_bytes_per_text_byte + (1u << 20),
                                 parse)) {
    out.failure = stack_depth_exceeded("seedproxy could not start a thread to parse it.");
    return out;
  }
  if (parsed.result.error) {
    out.failure =
        ParseFailure{parsed.result.error->message, parsed.result.error->cursorpos, {}, {}};
    return out;
  }
  // Bytes that are not UTF-8 reach the tree verbatim and make it invalid JSON; PostgreSQL
  // rejects such text itself, so it is treated like any text the parser refuses.
  auto tree = JsonTree::read(parsed.result.parse_tree);
  if (!tree) {
    out.failure = ParseFailure{"the parse tree is not valid JSON (text not UTF-8?)", 0, {}, {}};
    return out;
  }
  out.tree = std::move(*tree);
  // The text parsed, so PostgreSQL's scanner accepts it too: lexing it cannot fail.
  out.tokens = lex_sql(sql);
  return out;
}

std::shared_ptr<const ParsedSql> parse_sql_shared(std::string_view sql) {
  if (sql.size() > parse_memo_bytes) return std::make_shared<const ParsedSql>(parse_sql(sql));
  struct Entry {
    std::string text;
    std::shared_ptr<const ParsedSql> parsed;
  };
  // Four texts: a Query's, and those of the few messages around it, replaced oldest first.
  thread_local std::array<Entry, 4> memo;
  thread_local std::size_t next = 0;
  for (const auto& entry : memo)
    if (entry.parsed && entry.text == sql) return entry.parsed;
  auto parsed = std::make_shared<const ParsedSql>(parse_sql(sql));
  memo[next] = {std::string(sql), parsed};
  next = (next + 1) % memo.size();
  return parsed;
}

std::optional<std::vector<Token>> scan_with_libpg_query(std::string_view sql) {
  const std::string text(sql);
  ScanResultGuard scanned{pg_query_scan(text.c_str())};
  if (scanned.result.error) return std::nullopt;
  UnpackedScanGuard tokens{
      pg_query__scan_result__unpack(nullptr, scanned.result.pbuf.len,
                                    reinterpret_cast<const uint8_t*>(scanned.result.pbuf.data))};
  if (!tokens.result) return std::nullopt;
  std::vector<Token> out;
  out.reserve(tokens.result->n_tokens);
  for (std::size_t i = 0; i < tokens.result->n_tokens; ++i) {
    const auto* token = tokens.result->tokens[i];
    if (token->token == PG_QUERY__TOKEN__SQL_COMMENT || token->token == PG_QUERY__TOKEN__C_COMMENT)
      continue;
    Token t{token->start, token->end, 0, kind_of(*token)};
    if (token->token == PG_QUERY__TOKEN__UIDENT || token->token == PG_QUERY__TOKEN__USCONST)
      t.end = unicode_token_end(text, token->start);
    else if (token->end - token->start == 1)
      t.single = text[static_cast<std::size_t>(token->start)];
    out.push_back(t);
  }
  return out;
}

}  // namespace seedproxy::rewriter
