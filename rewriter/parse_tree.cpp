// Column references, token extents and safe field access over libpg_query's JSON tree.
#include "rewriter/parse_tree.hpp"

#include <algorithm>

namespace seedproxy::rewriter {

ColumnRefView read_column_ref(const Json& column_ref) {
  ColumnRefView view;
  view.location = column_ref.value("location", -1);
  for (const auto& field : list_at(column_ref, "fields")) {
    if (field.contains("A_Star")) {
      view.star = true;
    } else if (const auto it = field.find("String"); it != field.end()) {
      view.names.push_back(it->value("sval", std::string()));
    }
  }
  return view;
}

std::optional<int> end_after_tokens(const std::vector<Token>& tokens, int location, int count) {
  const auto it = std::lower_bound(tokens.begin(), tokens.end(), location,
                                   [](const Token& t, int at) { return t.start < at; });
  if (it == tokens.end() || it->start != location || count < 1) return std::nullopt;
  const auto index =
      static_cast<std::size_t>(it - tokens.begin()) + static_cast<std::size_t>(count) - 1;
  if (index >= tokens.size()) return std::nullopt;
  return tokens[index].end;
}

std::string string_at(const Json& node, const char* key) {
  const auto it = node.find(key);
  return it != node.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const Json& node_at(const Json& node, const char* key) {
  static const Json none;
  if (!node.is_object()) return none;
  const auto it = node.find(key);
  return it != node.end() ? *it : none;
}

const Json& list_at(const Json& node, const char* key) {
  static const Json empty = Json::array();
  const auto it = node.find(key);
  return it != node.end() && it->is_array() ? *it : empty;
}

}  // namespace seedproxy::rewriter
