// Name resolution over one parsed statement: finds every reference to a virtual attribute (and
// every '*' that must show one) and turns it into a splice, or into a PostgreSQL-style refusal.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/resolve/rewrite_request.hpp"

namespace seedproxy::rewriter {

// Replace bytes [begin, end) of the client's text with `text` (an insertion when equal).
struct Edit {
  static constexpr int at_begin = -1;
  static constexpr int no_anchor = -2;
  int begin = 0;
  int end = 0;
  std::string text;
  // Where a position PostgreSQL reports inside `text` points in the client's text: `begin` (the
  // reference or '*' it replaces), another byte offset (the 'a.*' an insertion follows), or
  // no_anchor where PostgreSQL would report none (the columns of TABLE's '*').
  int anchor = at_begin;
};

struct Resolution {
  std::vector<Edit> edits;
  std::optional<SqlError> error;
  std::vector<AttributeRead> reads;
  std::size_t naming_steps = 0;  // nodes examined to name columns (ColumnNames::steps)
};

// Resolves one statement node ({"SelectStmt": …}, {"InsertStmt": …}, …).
[[nodiscard]] Resolution resolve_statement(const Json& statement, const RewriteRequest& request,
                                           const std::vector<Token>& tokens);

// Whether resolve_statement looks into a statement node of this kind ("SelectStmt", …) at all.
// Any other kind (CREATE TABLE, ALTER TABLE, DROP, …) is left as sent whatever the catalog says.
[[nodiscard]] bool resolved_kind(std::string_view kind) noexcept;

}  // namespace seedproxy::rewriter
