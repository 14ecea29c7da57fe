// Session-state statements (PREPARE, EXECUTE, DEALLOCATE, DISCARD, temporary relations) read
// from libpg_query's parse tree, statement by statement.
#include "rewriter/statements/session_statements.hpp"

#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/parse/pg_parser.hpp"

namespace seedproxy::rewriter {
namespace {

using Kind = SessionStatement::Kind;

// A RangeVar that names a temporary relation: TEMP / TEMPORARY, or created in pg_temp.
bool temporary(const Json& range_var) {
  return node_at(range_var, "relpersistence") == "t" ||
         node_at(range_var, "schemaname") == "pg_temp";
}

void read_create(const Json& relation, std::string_view on_commit, SessionStatement& out) {
  if (relation.is_null() || !temporary(relation)) return;
  out.kind = Kind::create_temp;
  out.name = string_at(relation, "relname");
  out.on_commit_drop = on_commit == "ONCOMMIT_DROP";
}

void read_drop(const Json& drop, SessionStatement& out) {
  const auto& type = node_at(drop, "removeType");
  if (type != "OBJECT_TABLE" && type != "OBJECT_VIEW") return;
  for (const auto& object : list_at(drop, "objects")) {
    const auto& items = list_at(node_at(object, "List"), "items");
    const auto part = [&](std::size_t i) { return string_at(node_at(items[i], "String"), "sval"); };
    // A qualified name is temporary only in pg_temp; catalog.schema.name never is.
    if (items.size() == 1)
      out.names.push_back(part(0));
    else if (items.size() == 2 && part(0) == "pg_temp")
      out.names.push_back(part(1));
  }
  if (!out.names.empty()) out.kind = Kind::drop;
}

SessionStatement read_statement(const Json& statement) {
  SessionStatement out;
  for_tagged(statement, [&](std::string_view kind, const Json& body) {
    if (kind == "PrepareStmt") {
      out.kind = Kind::prepare;
      out.name = string_at(body, "name");
    } else if (kind == "ExecuteStmt") {
      out.kind = Kind::execute;
      out.name = string_at(body, "name");
    } else if (kind == "ExplainStmt" || kind == "CreateTableAsStmt") {
      // EXPLAIN [ANALYZE] EXECUTE p and CREATE TABLE t AS EXECUTE p use p too.
      const auto& execute = node_at(node_at(body, "query"), "ExecuteStmt");
      if (!execute.is_null()) {
        out.kind = Kind::execute;
        out.name = string_at(execute, "name");
      }
      if (kind == "CreateTableAsStmt" && out.kind == Kind::other) {
        const auto& into = node_at(body, "into");
        read_create(node_at(into, "rel"), string_at(into, "onCommit"), out);
      }
    } else if (kind == "DeallocateStmt") {
      out.name = string_at(body, "name");
      out.kind = out.name.empty() ? Kind::deallocate_all : Kind::deallocate;
    } else if (kind == "DiscardStmt") {
      const auto& target = node_at(body, "target");
      if (target == "DISCARD_ALL") out.kind = Kind::discard_all;
      if (target == "DISCARD_TEMP") out.kind = Kind::discard_temp;
    } else if (kind == "CreateStmt") {
      read_create(node_at(body, "relation"), string_at(body, "oncommit"), out);
    } else if (kind == "ViewStmt") {
      read_create(node_at(body, "view"), {}, out);
    } else if (kind == "SelectStmt") {
      const auto& into = node_at(body, "intoClause");
      if (!into.is_null()) read_create(node_at(into, "rel"), string_at(into, "onCommit"), out);
    } else if (kind == "DropStmt") {
      read_drop(body, out);
    }
  });
  return out;
}

}  // namespace

std::optional<std::vector<SessionStatement>> read_session_statements(std::string_view sql) {
  const ParsedSql parsed = parse_sql(sql);
  if (parsed.failure) return std::nullopt;
  std::vector<SessionStatement> out;
  for (const auto& entry : list_at(parsed.tree.root(), "stmts")) {
    SessionStatement statement = read_statement(node_at(entry, "stmt"));
    const int location = entry.value("stmt_location", 0);
    const int length = entry.value("stmt_len", 0);
    statement.begin = static_cast<std::size_t>(location);
    statement.end = length == 0 ? sql.size() : static_cast<std::size_t>(location + length);
    out.push_back(std::move(statement));
  }
  return out;
}

}  // namespace seedproxy::rewriter
