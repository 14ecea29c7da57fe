// PostgreSQL's node text (what nodeToString writes, as pg_rewrite.ev_action stores a view's query)
// read into a tree of nodes, lists and scalar tokens, so an analysis can follow the structure:
// which subquery a condition belongs to, which side of a join a table is on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace seedproxy::seeds {

struct TreeValue;

// One node: {KIND :field value :field value ...}.
struct PgNode {
  std::string kind;  // node tag as written: "QUERY", "OPEXPR", "VAR", ...
  std::vector<std::pair<std::string, TreeValue>> fields;

  // The field's value, or null when the node has no such field.
  [[nodiscard]] const TreeValue* field(std::string_view name) const noexcept;
  // A scalar field as written ("" when absent, <> or not a scalar).
  [[nodiscard]] std::string_view scalar(std::string_view name) const noexcept;
  // A scalar field as an integer, `fallback` when absent or not a number.
  [[nodiscard]] long long integer(std::string_view name, long long fallback = 0) const noexcept;
  // A field holding a node, or null (absent, <>, or not a node).
  [[nodiscard]] const PgNode* child(std::string_view name) const noexcept;
  // The items of a field holding a list; empty when absent, <> or not a list.
  [[nodiscard]] std::span<const TreeValue> items(std::string_view name) const noexcept;
};

// A value: <> (null), a scalar token, a node, or a list of values (with its tag: 'i' integers,
// 'o' oids, 'b' a bitmapset, or none).
struct TreeValue {
  enum class Kind : std::uint8_t { null, scalar, node, list };
  Kind kind = Kind::null;
  std::string text;  // scalar: the token as written (a string without its quotes); list: the tag
  std::unique_ptr<PgNode> node;
  std::vector<TreeValue> items;

  [[nodiscard]] const PgNode* as_node() const noexcept {
    return kind == Kind::node ? node.get() : nullptr;
  }
};

// The values of `text` (ev_action is a list of queries). Throws std::runtime_error on text that is
// not node text or nests deeper than PostgreSQL itself would write.
[[nodiscard]] TreeValue read_node_tree(std::string_view text);

// Calls `visit` for every node under `value` (itself included), depth first, parents first.
// `visit` returns false to skip the node's children.
template <typename Visit>
void walk_nodes(const TreeValue& value, Visit&& visit) {
  if (value.kind == TreeValue::Kind::list) {
    for (const auto& item : value.items) walk_nodes(item, visit);
  } else if (const PgNode* node = value.as_node()) {
    if (!visit(*node)) return;
    for (const auto& [name, child] : node->fields) walk_nodes(child, visit);
  }
}

}  // namespace seedproxy::seeds
