// Reading PostgreSQL's stored query trees (pg_rewrite.ev_action, the text nodeToString writes)
// just far enough to list the nodes the validator judges: functions, operators, constants, casts.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedproxy::seeds {

struct TreeNode {
  std::string kind;  // node tag as written: "FUNCEXPR", "OPEXPR", "CONST", "VAR", ...
  std::vector<std::pair<std::string, std::string>> fields;  // scalar fields, values as written
  std::vector<std::string> opnos;                           // ROWCOMPAREEXPR's operators
  // COERCEVIAIO only: the type oid of its argument, empty when this reader cannot tell.
  std::string argument_type;

  // The value of a scalar field, or "" when the node has none.
  [[nodiscard]] std::string_view field(std::string_view name) const noexcept;
  // The node's byte offset in the statement that created it, -1 when none.
  [[nodiscard]] int location() const noexcept;
};

// Every node of `text`, in the order they open. Backslash-escaped characters (how names and
// strings are written there) never count as structure, so no string can fake a node.
[[nodiscard]] std::vector<TreeNode> read_query_tree(std::string_view text);

}  // namespace seedproxy::seeds
