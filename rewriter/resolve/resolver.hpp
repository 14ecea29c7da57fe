// Name resolution over one parsed statement: finds every reference to a virtual attribute (and
// every '*' that must show one) and turns it into a splice, or into a PostgreSQL-style refusal.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/resolve/rewrite_request.hpp"

namespace seedproxy::rewriter {

// Replace bytes [begin, end) of the client's text with `text` (an insertion when equal).
struct Edit {
  int begin = 0;
  int end = 0;
  std::string text;
};

struct Resolution {
  std::vector<Edit> edits;
  std::optional<SqlError> error;
  std::vector<AttributeRead> reads;
};

// Resolves one statement node ({"SelectStmt": …}, {"InsertStmt": …}, …).
[[nodiscard]] Resolution resolve_statement(const Json& statement, const RewriteRequest& request,
                                           const std::vector<Token>& tokens);

}  // namespace seedproxy::rewriter
