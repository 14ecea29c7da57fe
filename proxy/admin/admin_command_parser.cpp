// Recognising admin console commands: a simple Query split into statements, each statement into
// a verb and its target, and a PostgreSQL-style error for anything else.
#include "proxy/admin/admin_command_parser.hpp"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/identifiers.hpp"
#include "common/sqlstate.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {
namespace {

constexpr std::string_view syntax_error = sqlstate::syntax_error;
constexpr std::string_view command_list =
    "SHOW SEEDS, SHOW MATERIALIZATIONS, SHOW CLIENTS, SHOW POOLS, SHOW STATS, SHOW CONFIG, "
    "RELOAD, "
    "PAUSE [entity.attribute], RESUME [entity.attribute], MATERIALIZE entity.attribute, "
    "ROLLBACK entity.attribute, KILL database";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f'; }

std::string upper(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'a' && c <= 'z') ? char(c - 'a' + 'A') : c; });
  return out;
}

std::string trimmed(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return std::string(text);
}

// Splits off the first whitespace-separated word.
std::string_view take_word(std::string_view& text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  std::size_t end = 0;
  while (end < text.size() && !is_space(text[end])) ++end;
  const auto word = text.substr(0, end);
  text.remove_prefix(end);
  return word;
}

// What the operator typed, for messages: one line, bounded.
std::string shown(std::string_view text) {
  std::string out = trimmed(text);
  std::replace_if(out.begin(), out.end(), is_space, ' ');
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

}  // namespace

std::vector<std::string> split_statements(std::string_view query) {
  std::vector<std::string> out;
  std::string current;
  const auto flush = [&] {
    auto statement = trimmed(current);
    if (!statement.empty()) out.push_back(std::move(statement));
    current.clear();
  };
  for (std::size_t i = 0; i < query.size(); ++i) {
    const char c = query[i];
    if (c == '\'' || c == '"') {
      // A quoted run, doubled quotes included, is kept as typed.
      std::size_t end = i + 1;
      for (; end < query.size(); ++end) {
        if (query[end] != c) continue;
        if (end + 1 < query.size() && query[end + 1] == c) {
          ++end;
          continue;
        }
        break;
      }
      current.append(query.substr(i, end + 1 - i));
      i = end;
    } else if (c == '-' && i + 1 < query.size() && query[i + 1] == '-') {
      while (i < query.size() && query[i] != '\n') ++i;
      current += ' ';
    } else if (c == '/' && i + 1 < query.size() && query[i + 1] == '*') {
      const auto end = query.find("*/", i + 2);
      i = end == std::string_view::npos ? query.size() : end + 1;
      current += ' ';
    } else if (c == ';') {
      flush();
    } else {
      current += c;
    }
  }
  flush();
  return out;
}

std::variant<AdminCommand, AdminError> parse_command(std::string_view statement) {
  std::string_view rest = statement;
  const auto verb = upper(take_word(rest));
  AdminCommand command;
  const auto no_more = [&](std::string_view name) -> std::optional<AdminError> {
    if (trimmed(rest).empty()) return std::nullopt;
    return AdminError{
        syntax_error,
        "syntax error at \"" + shown(rest) + "\": " + std::string(name) + " takes no argument",
        {}};
  };
  if (verb == "SHOW") {
    const auto item = upper(take_word(rest));
    static constexpr std::pair<std::string_view, AdminVerb> items[] = {
        {"SEEDS", AdminVerb::show_seeds},
        {"MATERIALIZATIONS", AdminVerb::show_materializations},
        {"CLIENTS", AdminVerb::show_clients},
        {"POOLS", AdminVerb::show_pools},
        {"STATS", AdminVerb::show_stats},
        {"CONFIG", AdminVerb::show_config}};
    for (const auto& [name, kind] : items) {
      if (item != name) continue;
      if (auto error = no_more("SHOW " + std::string(name))) return *error;
      command.verb = kind;
      return command;
    }
    return AdminError{syntax_error,
                      item.empty() ? std::string("SHOW needs an item")
                                   : "unrecognized SHOW item \"" + shown(item) + "\"",
                      "The admin console knows SHOW SEEDS, SHOW MATERIALIZATIONS, SHOW CLIENTS, "
                      "SHOW POOLS, SHOW STATS and SHOW CONFIG."};
  }
  if (verb == "RELOAD") {
    if (auto error = no_more("RELOAD")) return *error;
    command.verb = AdminVerb::reload;
    return command;
  }
  if (verb == "PAUSE" || verb == "RESUME") {
    // Without an attribute: every materialization in progress.
    command.verb = verb == "PAUSE" ? AdminVerb::pause : AdminVerb::resume;
    command.target = trimmed(rest);
    return command;
  }
  if (verb == "MATERIALIZE" || verb == "ROLLBACK") {
    command.verb = verb == "MATERIALIZE" ? AdminVerb::materialize : AdminVerb::rollback;
    command.target = trimmed(rest);
    if (command.target.empty())
      return AdminError{
          syntax_error, verb + " needs an attribute: " + verb + " entity.attribute", {}};
    return command;
  }
  if (verb == "KILL") {
    // One database name, folded as PostgreSQL folds identifiers.
    const auto name = pg::split_qualified_name(trimmed(rest));
    if (!name || name->size() != 1)
      return AdminError{syntax_error, "KILL needs one database name: KILL database", {}};
    command.verb = AdminVerb::kill;
    command.target = name->front();
    return command;
  }
  return AdminError{syntax_error, "unrecognized admin console command \"" + shown(statement) + "\"",
                    "The admin console accepts " + std::string(command_list) + "."};
}

std::vector<std::byte> error_bytes(const AdminError& error) {
  protocol::ErrorFields fields;
  fields.severity = protocol::Severity::error;
  fields.code = error.code;
  fields.message = error.message;
  fields.hint = error.hint;
  return protocol::error_response(fields);
}

}  // namespace seedproxy::proxy
