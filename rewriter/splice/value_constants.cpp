// Finding the plain-value constants of a parse tree, by A_Const location and the node above it.
#include "rewriter/splice/value_constants.hpp"

#include <algorithm>
#include <string_view>

#include "rewriter/parse/parse_tree.hpp"

namespace seedproxy::rewriter {
namespace {

bool templatable_statement(std::string_view kind) {
  return kind == "SelectStmt" || kind == "InsertStmt" || kind == "UpdateStmt" ||
         kind == "DeleteStmt";
}

// Members whose constants are kept out: lists whose direct A_Const items PostgreSQL may read as
// output column numbers (their whole subtree, GROUP BY ROLLUP (1) too, at little cost in
// sharing), and type names with their modifiers (varchar(10); libpg_query writes a TypeName
// field untagged).
bool kept_out(std::string_view key) {
  return key == "groupClause" || key == "distinctClause" || key == "partitionClause" ||
         key == "typeName" || key == "typmods" || key == "arrayBounds";
}

struct Walk {
  std::vector<int> values;    // A_Const locations under plain contexts
  std::vector<int> excluded;  // A_Const locations anywhere else

  void visit(const Json& node, bool keep_out) {
    if (node.is_array()) {
      for (const auto& item : node) visit(item, keep_out);
      return;
    }
    if (!node.is_object()) return;
    if (node.size() == 1 && node.begin().value().is_object()) {
      const std::string_view kind = node.begin().key();
      const Json& body = node.begin().value();
      if (kind == "A_Const") {
        const int location = body.value("location", -1);
        if (location >= 0) (keep_out ? excluded : values).push_back(location);
        return;
      }
      if (kind == "TypeName" || kind == "GroupingSet") keep_out = true;
      if (kind == "SortBy") {
        // ORDER BY 2 names the second output column; ORDER BY 2 + 0 is a value.
        const Json& sorted = node_at(body, "node");
        const bool positional = sorted.is_object() && sorted.contains("A_Const");
        for (const auto& [key, child] : body.items())
          visit(child, keep_out || kept_out(key) || (key == "node" && positional));
        return;
      }
      for (const auto& [key, child] : body.items()) visit(child, keep_out || kept_out(key));
      return;
    }
    for (const auto& [key, child] : node.items()) visit(child, keep_out || kept_out(key));
  }
};

}  // namespace

std::vector<std::int32_t> value_constants(const ParsedSql& parsed) {
  std::vector<std::int32_t> out;
  if (parsed.failure) return out;
  Walk walk;
  for (const auto& entry : list_at(parsed.tree.root(), "stmts")) {
    bool templatable = false;
    for_tagged(node_at(entry, "stmt"), [&](std::string_view kind, const Json&) {
      templatable = templatable_statement(kind);
    });
    if (!templatable) return out;
    walk.visit(node_at(entry, "stmt"), false);
  }
  std::sort(walk.excluded.begin(), walk.excluded.end());
  const auto& tokens = parsed.tokens;
  for (const int location : walk.values) {
    if (std::binary_search(walk.excluded.begin(), walk.excluded.end(), location)) continue;
    const auto it = std::lower_bound(tokens.begin(), tokens.end(), location,
                                     [](const Token& t, int at) { return t.start < at; });
    if (it == tokens.end() || it->start != location) continue;
    if (it->literal != Literal::none) {
      out.push_back(it->start);
    } else if (it->single == '-' && it + 1 != tokens.end() &&
               ((it + 1)->literal == Literal::integer || (it + 1)->literal == Literal::numeric)) {
      out.push_back((it + 1)->start);  // -5: the constant is the 5, the sign is an operator
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace seedproxy::rewriter
