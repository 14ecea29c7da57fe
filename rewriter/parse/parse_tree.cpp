// Column references, token extents and safe field access over libpg_query's JSON tree.
#include "rewriter/parse/parse_tree.hpp"

#include <algorithm>

#include "common/text.hpp"

namespace seedproxy::rewriter {

ColumnRefView read_column_ref(const Json& column_ref) {
  ColumnRefView view;
  view.location = column_ref.value("location", -1);
  const auto& fields = list_at(column_ref, "fields");
  view.names.reserve(fields.size());
  for (const auto& field : fields) {
    if (!field.is_object() || field.size() != 1) continue;
    const auto tagged = field.begin();
    if (tagged.key() == "A_Star") {
      view.star = true;
    } else if (tagged.key() == "String") {
      view.names.emplace_back(tagged.value()["sval"].as_string());
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

std::optional<std::size_t> token_index(const std::vector<Token>& tokens, int location) {
  const auto it = std::lower_bound(tokens.begin(), tokens.end(), location,
                                   [](const Token& t, int at) { return t.start < at; });
  if (it == tokens.end() || it->start != location) return std::nullopt;
  return static_cast<std::size_t>(it - tokens.begin());
}

std::optional<int> reference_end(const std::vector<Token>& tokens, int location,
                                 std::size_t name_count) {
  auto index = token_index(tokens, location);
  if (!index || name_count == 0) return std::nullopt;
  std::size_t i = *index;
  for (std::size_t name = 0; name < name_count; ++name) {
    if (name > 0) {
      if (i >= tokens.size() || tokens[i].single != '.') return std::nullopt;
      ++i;
    }
    if (i >= tokens.size()) return std::nullopt;
    ++i;  // the identifier
    if (i + 1 < tokens.size() && tokens[i].kind == TokenKind::uescape) i += 2;
  }
  return tokens[i - 1].end;
}

std::optional<RelationExtent> relation_extent(std::string_view sql,
                                              const std::vector<Token>& tokens, int location,
                                              std::size_t name_count, bool only) {
  const auto first = token_index(tokens, location);
  const auto name_end = reference_end(tokens, location, name_count);
  if (!first || !name_end) return std::nullopt;
  RelationExtent extent{location, *name_end};
  auto after = static_cast<std::size_t>(
      std::lower_bound(tokens.begin(), tokens.end(), *name_end,
                       [](const Token& t, int at) { return t.start < at; }) -
      tokens.begin());
  if (!only) {
    if (after < tokens.size() && tokens[after].single == '*') extent.end = tokens[after].end;
    return extent;
  }
  const std::size_t i = *first;
  if (i > 0 && token_is(sql, tokens[i - 1], "only")) {
    extent.begin = tokens[i - 1].start;
  } else if (i > 1 && tokens[i - 1].single == '(' && token_is(sql, tokens[i - 2], "only") &&
             after < tokens.size() && tokens[after].single == ')') {
    extent.begin = tokens[i - 2].start;
    extent.end = tokens[after].end;
  }
  return extent;
}

bool token_is(std::string_view sql, const Token& token, std::string_view word) {
  if (token.end - token.start != static_cast<int>(word.size())) return false;
  if (token.start < 0 || static_cast<std::size_t>(token.end) > sql.size()) return false;
  for (std::size_t i = 0; i < word.size(); ++i) {
    if (text::ascii_lower(sql[static_cast<std::size_t>(token.start) + i]) != word[i]) return false;
  }
  return true;
}

std::string string_at(const Json& node, std::string_view key) {
  return std::string(node[key].as_string());
}

const Json& node_at(const Json& node, std::string_view key) { return node[key]; }

const Json& list_at(const Json& node, std::string_view key) {
  static const Json empty = Json::array();
  const Json& list = node[key];
  return list.is_array() ? list : empty;
}

}  // namespace seedproxy::rewriter
