// Reading libpg_query's JSON tree: column references, names and the byte extent of a node, so
// the resolver can splice the client's text instead of regenerating it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/parse/json_tree.hpp"
#include "rewriter/parse/pg_parser.hpp"

namespace seedproxy::rewriter {

struct ColumnRefView {
  std::vector<std::string> names;  // identifiers as PostgreSQL folded them
  bool star = false;               // ends in '*'
  int location = -1;               // byte offset of the first token
};

// Reads a {"ColumnRef": {...}} body (the object under the "ColumnRef" key).
[[nodiscard]] ColumnRefView read_column_ref(const Json& column_ref);

// Byte offset just past the `count`-th syntactic token starting at `location` (so a reference
// a.b spans 3 tokens). nullopt when `location` is not a token start.
[[nodiscard]] std::optional<int> end_after_tokens(const std::vector<Token>& tokens, int location,
                                                  int count);

// Index of the token that starts at `location`, or nullopt.
[[nodiscard]] std::optional<std::size_t> token_index(const std::vector<Token>& tokens,
                                                     int location);

// Byte offset just past a column reference of `name_count` dotted names starting at `location`
// (each name may carry a UESCAPE clause). nullopt when the tokens do not look like one.
[[nodiscard]] std::optional<int> reference_end(const std::vector<Token>& tokens, int location,
                                               std::size_t name_count);

// The bytes of a relation in FROM as PostgreSQL's relation_expr spells it, "[ONLY] name [*]" or
// "ONLY ( name )", from the name's first token at `location` with `name_count` dotted names.
// `only`: the RangeVar says ONLY (its "inh" is false). nullopt when the tokens do not match.
struct RelationExtent {
  int begin = 0;  // ONLY, or the name
  int end = 0;    // past the name, its '*' or the ')' after ONLY ( name )
};
[[nodiscard]] std::optional<RelationExtent> relation_extent(std::string_view sql,
                                                            const std::vector<Token>& tokens,
                                                            int location, std::size_t name_count,
                                                            bool only);

// True when `token` spells `word` (lower case), ignoring ASCII case; quoted identifiers never do.
[[nodiscard]] bool token_is(std::string_view sql, const Token& token, std::string_view word);

// The string under key `key` of `node`, or "" when absent.
[[nodiscard]] std::string string_at(const Json& node, std::string_view key);

// The child under key `key` of `node`, or null.
[[nodiscard]] const Json& node_at(const Json& node, std::string_view key);

// The list under key `key` of `node`, or an empty list.
[[nodiscard]] const Json& list_at(const Json& node, std::string_view key);

// Calls `visit(kind, body)` for `node` if it is a tagged node ({"Kind": {...}}).
template <class Visit>
void for_tagged(const Json& node, Visit&& visit) {
  if (!node.is_object() || node.size() != 1) return;
  const auto it = node.begin();
  if (it.value().is_object()) visit(it.key(), it.value());
}

}  // namespace seedproxy::rewriter
