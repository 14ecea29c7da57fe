// Identifier quoting and the folding of dotted names, as PostgreSQL's scanner folds them.
#include "common/identifiers.hpp"

#include <algorithm>

#include "common/text.hpp"

namespace seedproxy::pg {

std::string quote_identifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out += '"';
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string sql_comment(std::string_view text) {
  std::string out = "/* ";
  for (char c : text) {
    if (c == '\n' || c == '\r' || c == '\0') c = ' ';
    const char before = out.back();
    if ((before == '/' && c == '*') || (before == '*' && c == '/')) out += ' ';
    out += c;
  }
  out += " */";
  return out;
}

std::string quote_identifier_if_needed(std::string_view name) {
  const bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9') &&
                     std::all_of(name.begin(), name.end(), [](char c) {
                       return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
                     });
  return plain ? std::string(name) : quote_identifier(name);
}

std::optional<std::vector<std::string>> split_qualified_name(std::string_view name) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  bool part_was_quoted = false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '"') {
      if (quoted && i + 1 < name.size() && name[i + 1] == '"') {
        parts.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
        part_was_quoted = true;
      }
    } else if (c == '.' && !quoted) {
      if (parts.back().empty()) return std::nullopt;
      parts.emplace_back();
      part_was_quoted = false;
    } else {
      parts.back() += (quoted || part_was_quoted) ? c : text::ascii_lower(c);
    }
  }
  if (quoted || parts.back().empty()) return std::nullopt;
  return parts;
}

bool split_entity(std::string_view entity, std::string& schema, std::string& table) {
  const auto parts = split_qualified_name(entity);
  if (!parts || parts->size() > 2) return false;
  schema = parts->size() == 2 ? parts->front() : "public";
  table = parts->back();
  return true;
}

}  // namespace seedproxy::pg
