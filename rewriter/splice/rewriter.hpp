// The Virtual Attribute Resolver: a pure function of (SQL text, catalog, seeds, search_path)
// that splices virtual attributes into statements, or refuses writes to them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/resolve/rewrite_request.hpp"
#include "rewriter/splice/splice_map.hpp"

namespace seedproxy::rewriter {

struct RewriteResult {
  enum class Outcome { unchanged, rewritten, refused };
  Outcome outcome = Outcome::unchanged;
  // rewritten: the new text. refused: the client's text with the refused statement replaced by
  // a statement PostgreSQL fails on at parse analysis, naming `refusal_marker`; the proxy swaps
  // that error for `error`. This keeps PostgreSQL's own transaction and pipeline state exact.
  std::string sql;
  SqlError error;
  std::string refusal_marker;
  std::vector<AttributeRead> reads;  // virtual attributes the statement reads
  // rewritten and refused: the edits that made `sql`, to give PostgreSQL's error positions back
  // in the client's text (client_position).
  SpliceMap splices;
  // rewritten and unchanged: where the constants whose value cannot change this result start
  // (value_constants.hpp), for the shape cache's template. Empty when the text was not parsed.
  std::vector<std::int32_t> value_constants;
};

[[nodiscard]] RewriteResult rewrite(const RewriteRequest& request);

// Whether rewrite() of `sql` can depend on the catalog and seeds at all: false when every
// statement of it is of a kind the resolver leaves as sent (DDL such as CREATE TABLE or ALTER
// TABLE, transaction control, SET, ...), or when PostgreSQL cannot parse it. A session need not
// wait for a catalog refresh before sending such a text. Parses `sql`: for texts the pre-filter
// let through.
[[nodiscard]] bool depends_on_catalog(std::string_view sql);

// The identifier prefix of refusal markers; an ErrorResponse 42703 naming a column that starts
// with it comes from a refused statement.
inline constexpr std::string_view refusal_marker_prefix = "seedproxy refused statement ";

// The statement that stands in for a refused one: `SELECT "<marker>"`, which PostgreSQL fails on
// at parse analysis, after a comment saying in words what happened and which error the client
// got, so that PostgreSQL's log (its STATEMENT line, or log_statement) explains its own 42703.
[[nodiscard]] std::string refusal_statement(std::string_view marker, const SqlError& error);

}  // namespace seedproxy::rewriter
