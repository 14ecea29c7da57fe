// ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS (...) STORED, read from PostgreSQL's parse
// tree (names, the shape) and the token stream (the exact text of the type and the expression).
#include "rewriter/statements/generated_column_ddl.hpp"

#include <algorithm>
#include <initializer_list>

#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/parse/pg_parser.hpp"

namespace seedproxy::rewriter {
namespace {

// True when every member of `node` is one of `allowed`: anything more (a COLLATE, a constraint
// name, a catalog name, ...) is something the caller did not ask for.
bool only_members(const Json& node, std::initializer_list<std::string_view> allowed) {
  if (!node.is_object()) return false;
  return std::all_of(node.items().begin(), node.items().end(), [&](const JsonMember& member) {
    return std::find(allowed.begin(), allowed.end(), member.key) != allowed.end();
  });
}

}  // namespace

std::optional<GeneratedColumnDdl> read_generated_column_ddl(std::string_view sql) {
  const ParsedSql parsed = parse_sql(sql);
  if (parsed.failure) return std::nullopt;
  const auto& statements = list_at(parsed.tree.root(), "stmts");
  if (statements.size() != 1) return std::nullopt;

  const Json& alter = node_at(node_at(statements[0], "stmt"), "AlterTableStmt");
  if (!only_members(alter, {"relation", "cmds", "objtype", "missing_ok"}) ||
      node_at(alter, "objtype") != "OBJECT_TABLE")
    return std::nullopt;
  const Json& relation = node_at(alter, "relation");
  if (!only_members(relation, {"schemaname", "relname", "inh", "relpersistence", "location"}))
    return std::nullopt;
  const auto& commands = list_at(alter, "cmds");
  if (commands.size() != 1) return std::nullopt;
  const Json& command = node_at(commands[0], "AlterTableCmd");
  if (!only_members(command, {"subtype", "def", "behavior", "missing_ok"}) ||
      node_at(command, "subtype") != "AT_AddColumn")
    return std::nullopt;
  const Json& column = node_at(node_at(command, "def"), "ColumnDef");
  if (!only_members(column, {"colname", "typeName", "is_local", "constraints", "location"}))
    return std::nullopt;
  const auto& constraints = list_at(column, "constraints");
  if (constraints.size() != 1) return std::nullopt;
  const Json& generated = node_at(constraints[0], "Constraint");
  if (!only_members(generated, {"contype", "location", "raw_expr", "generated_when"}) ||
      node_at(generated, "contype") != "CONSTR_GENERATED" ||
      node_at(generated, "generated_when") != "a")
    return std::nullopt;

  // GENERATED ALWAYS AS ( expression ) STORED [;...], located by tokens.
  const auto& tokens = parsed.tokens;
  const auto at = token_index(tokens, generated.value("location", -1));
  const auto type_at = token_index(tokens, node_at(column, "typeName").value("location", -1));
  if (!at || !type_at || *type_at >= *at || *at + 4 >= tokens.size()) return std::nullopt;
  const std::size_t open = *at + 3;
  if (!token_is(sql, tokens[*at], "generated") || !token_is(sql, tokens[*at + 1], "always") ||
      !token_is(sql, tokens[*at + 2], "as") || tokens[open].single != '(')
    return std::nullopt;
  std::size_t close = open;
  for (int depth = 0; close < tokens.size(); ++close) {
    if (tokens[close].single == '(' || tokens[close].single == '[') ++depth;
    if (tokens[close].single == ')' || tokens[close].single == ']') --depth;
    if (depth == 0) break;
  }
  if (close >= tokens.size() || close == open + 1 || close + 1 >= tokens.size() ||
      !token_is(sql, tokens[close + 1], "stored"))
    return std::nullopt;
  for (std::size_t i = close + 2; i < tokens.size(); ++i)
    if (tokens[i].single != ';') return std::nullopt;

  const auto slice = [&](std::size_t first, std::size_t last) {
    const auto begin = static_cast<std::size_t>(tokens[first].start);
    return std::string(sql.substr(begin, static_cast<std::size_t>(tokens[last].end) - begin));
  };
  GeneratedColumnDdl ddl;
  if (relation.contains("schemaname")) ddl.schema = string_at(relation, "schemaname");
  ddl.table = string_at(relation, "relname");
  ddl.column = string_at(column, "colname");
  ddl.type = slice(*type_at, *at - 1);
  ddl.expression = slice(open + 1, close - 1);
  // From the token, not by searching the text: the same characters may come earlier (a table
  // named q1_log with the expression q1), and a position must point at the expression.
  ddl.expression_at = static_cast<std::size_t>(tokens[open + 1].start);
  ddl.if_not_exists = command.value("missing_ok", false);
  ddl.if_exists = alter.value("missing_ok", false);
  ddl.only = !relation.value("inh", false);
  return ddl;
}

}  // namespace seedproxy::rewriter
