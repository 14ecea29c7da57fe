// The Virtual Attribute Resolver: a pure function of (SQL text, catalog, seeds, search_path)
// that splices virtual attributes into statements, or refuses writes to them.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/catalog.hpp"
#include "rewriter/seed_set.hpp"

namespace seedproxy::rewriter {

// A PostgreSQL-style error the client must receive instead of running the statement.
struct SqlError {
  std::string sqlstate;
  std::string message;
  std::string detail;
  int position = 0;  // 1-based character position in the client's text; 0 when none
};

struct AttributeRead {
  const VirtualAttribute* attribute = nullptr;
};

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
};

struct RewriteRequest {
  std::string_view sql;
  const Catalog& catalog;
  const SeedSet& seeds;
  std::span<const std::string> search_path;  // schemas, "$user" already expanded
};

[[nodiscard]] RewriteResult rewrite(const RewriteRequest& request);

// The identifier prefix of refusal markers; an ErrorResponse 42703 naming a column that starts
// with it comes from a refused statement.
inline constexpr std::string_view refusal_marker_prefix = "seedproxy refused statement ";

}  // namespace seedproxy::rewriter
