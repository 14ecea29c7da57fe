// SET/RESET search_path recognition over the parse tree, and search_path value splitting.
#include "rewriter/statements/search_path.hpp"

#include "common/text.hpp"
#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/parse/pg_parser.hpp"

namespace seedproxy::rewriter {

std::vector<std::string> split_search_path(std::string_view value) {
  std::vector<std::string> out;
  std::string current;
  bool quoted = false;
  bool any = false;
  auto finish = [&] {
    if (any) out.push_back(current);
    current.clear();
    any = false;
  };
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (quoted) {
      if (c == '"' && i + 1 < value.size() && value[i + 1] == '"') {
        current += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        current += c;
      }
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      finish();
    } else if (c != ' ' && c != '\t' && c != '\n') {
      current += text::ascii_lower(c);
      any = true;
    }
  }
  finish();
  return out;
}

std::optional<SearchPathChange> search_path_change(std::string_view sql) {
  if (!text::contains_ignoring_case(sql, "search_path") &&
      !text::contains_ignoring_case(sql, "reset"))
    return std::nullopt;
  const auto parsed = parse_sql(sql);
  if (parsed.failure) return std::nullopt;
  std::optional<SearchPathChange> change;
  for (const auto& entry : list_at(parsed.tree.root(), "stmts")) {
    const auto& set = node_at(node_at(entry, "stmt"), "VariableSetStmt");
    if (set.is_null()) continue;
    const auto kind = string_at(set, "kind");
    const auto name = string_at(set, "name");
    if (kind == "VAR_RESET_ALL") {
      change = SearchPathChange{true, false, {}};
      continue;
    }
    if (name != "search_path") continue;
    SearchPathChange next;
    next.local = set.value("is_local", false);
    if (kind == "VAR_SET_VALUE") {
      for (const auto& arg : list_at(set, "args")) {
        const auto& value = node_at(node_at(node_at(arg, "A_Const"), "sval"), "sval");
        if (!value.is_string()) continue;
        // Each argument is already one identifier; a string literal may hold a whole list.
        const std::string text(value.as_string());
        for (auto& schema : split_search_path(text)) {
          if (text.find(',') == std::string::npos) schema = text;
          next.schemas.push_back(std::move(schema));
        }
      }
    } else if (kind == "VAR_SET_DEFAULT" || kind == "VAR_RESET") {
      next.reset = true;
    } else {
      continue;
    }
    change = std::move(next);
  }
  return change;
}

}  // namespace seedproxy::rewriter
