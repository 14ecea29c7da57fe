// A small reader for PostgreSQL's node text format: nodes in braces, ":field value" pairs, lists.
#include "seeds/validate/query_tree.hpp"

#include <array>
#include <cstdlib>

namespace seedproxy::seeds {
namespace {

[[nodiscard]] bool token_end(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\t' || c == '(' || c == ')' || c == '{' || c == '}';
}

// Reads one token starting at `at` (escapes kept as written); leaves `at` after it.
[[nodiscard]] std::string read_token(std::string_view text, std::size_t& at) {
  const std::size_t begin = at;
  while (at < text.size() && !token_end(text[at])) at += text[at] == '\\' ? 2 : 1;
  if (at > text.size()) at = text.size();
  return std::string(text.substr(begin, at - begin));
}

// The field holding the result type of an expression node, for the kinds a cast's argument
// usually is. "bool" marks node kinds that always yield boolean.
[[nodiscard]] std::string_view result_type_field(std::string_view kind) noexcept {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 24> fields{{
      {"VAR", "vartype"},
      {"CONST", "consttype"},
      {"PARAM", "paramtype"},
      {"FUNCEXPR", "funcresulttype"},
      {"OPEXPR", "opresulttype"},
      {"DISTINCTEXPR", "opresulttype"},
      {"NULLIFEXPR", "opresulttype"},
      {"RELABELTYPE", "resulttype"},
      {"COERCEVIAIO", "resulttype"},
      {"ARRAYCOERCEEXPR", "resulttype"},
      {"CONVERTROWTYPEEXPR", "resulttype"},
      {"COERCETODOMAIN", "resulttype"},
      {"FIELDSELECT", "resulttype"},
      {"CASEEXPR", "casetype"},
      {"COALESCEEXPR", "coalescetype"},
      {"MINMAXEXPR", "minmaxtype"},
      {"SQLVALUEFUNCTION", "type"},
      {"AGGREF", "aggtype"},
      {"WINDOWFUNC", "wintype"},
      {"ARRAYEXPR", "array_typeid"},
      {"ROWEXPR", "row_typeid"},
      {"BOOLEXPR", "bool"},
      {"NULLTEST", "bool"},
      {"BOOLEANTEST", "bool"},
  }};
  if (kind == "SCALARARRAYOPEXPR" || kind == "ROWCOMPAREEXPR") return "bool";
  for (const auto& [k, f] : fields)
    if (k == kind) return f;
  return {};
}

struct Open {
  std::size_t node = 0;
  std::string field;  // the field whose value is being read (a nested node or list)
  bool argument_seen = false;
};

}  // namespace

std::string_view TreeNode::field(std::string_view name) const noexcept {
  for (const auto& [key, value] : fields)
    if (key == name) return value;
  return {};
}

int TreeNode::location() const noexcept {
  const std::string_view value = field("location");
  if (value.empty()) return -1;
  return std::atoi(std::string(value).c_str());
}

std::vector<TreeNode> read_query_tree(std::string_view text) {
  std::vector<TreeNode> nodes;
  std::vector<Open> open;
  std::size_t at = 0;
  while (at < text.size()) {
    const char c = text[at];
    if (c == '\\') {
      at += 2;
    } else if (c == '{') {
      ++at;
      nodes.push_back({});
      nodes.back().kind = read_token(text, at);
      open.push_back({nodes.size() - 1, {}, false});
    } else if (c == '}') {
      ++at;
      if (open.empty()) continue;
      const Open closed = open.back();
      open.pop_back();
      if (open.empty()) continue;
      Open& parent = open.back();
      TreeNode& parent_node = nodes[parent.node];
      if (parent_node.kind == "COERCEVIAIO" && parent.field == "arg" && !parent.argument_seen) {
        parent.argument_seen = true;
        const TreeNode& argument = nodes[closed.node];
        const std::string_view type_field = result_type_field(argument.kind);
        if (type_field == "bool")
          parent_node.argument_type = "16";
        else if (!type_field.empty())
          parent_node.argument_type = std::string(argument.field(type_field));
      }
    } else if (c == ':' && !open.empty()) {
      ++at;
      std::string name = read_token(text, at);
      while (at < text.size() && text[at] == ' ') ++at;
      Open& current = open.back();
      current.field = name;
      if (at < text.size() && text[at] == '(' && name == "opnos") {
        ++at;
        while (at < text.size() && text[at] != ')') {
          if (text[at] == ' ') {
            ++at;
            continue;
          }
          std::string token = read_token(text, at);
          if (token.empty()) break;
          if (token != "o") nodes[current.node].opnos.push_back(std::move(token));
        }
      } else if (at < text.size() && text[at] != '{' && text[at] != '(') {
        nodes[current.node].fields.emplace_back(std::move(name), read_token(text, at));
      }
    } else {
      ++at;
    }
  }
  return nodes;
}

}  // namespace seedproxy::seeds
