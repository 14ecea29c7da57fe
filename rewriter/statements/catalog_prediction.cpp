// Reading ALTER TABLE's column changes and renames from libpg_query's tree (AlterTableStmt with
// AlterTableCmd items, RenameStmt).
#include "rewriter/statements/catalog_prediction.hpp"

#include "rewriter/parse/parse_tree.hpp"

namespace seedproxy::rewriter {
namespace {

// The relation a statement names, with ALTER TABLE IF EXISTS; false for ONLY (inh false), which
// the prediction leaves to the refresh, and for a temporary relation.
bool read_relation(const Json& body, CatalogPrediction& out) {
  const Json& relation = node_at(body, "relation");
  if (!relation.is_object() || !relation.value("inh", false)) return false;
  if (string_at(relation, "relpersistence") == "t" || !string_at(relation, "catalogname").empty())
    return false;
  out.schema = string_at(relation, "schemaname");
  out.relation = string_at(relation, "relname");
  out.missing_ok = body.value("missing_ok", false);
  return !out.relation.empty() && out.schema != "pg_temp";
}

std::optional<CatalogPrediction> altered(const Json& body) {
  if (string_at(body, "objtype") != "OBJECT_TABLE") return std::nullopt;
  CatalogPrediction out;
  if (!read_relation(body, out)) return std::nullopt;
  const Json& commands = list_at(body, "cmds");
  if (commands.size() == 0) return std::nullopt;
  for (const Json& item : commands) {
    const Json& command = node_at(item, "AlterTableCmd");
    const std::string subtype = string_at(command, "subtype");
    if (string_at(command, "behavior") == "DROP_CASCADE") return std::nullopt;
    ColumnChange change;
    change.missing_ok = command.value("missing_ok", false);
    if (subtype == "AT_AddColumn") {
      change.kind = ColumnChange::Kind::add;
      change.column = string_at(node_at(node_at(command, "def"), "ColumnDef"), "colname");
    } else if (subtype == "AT_DropColumn") {
      change.kind = ColumnChange::Kind::drop;
      change.column = string_at(command, "name");
    } else {
      return std::nullopt;
    }
    if (change.column.empty()) return std::nullopt;
    out.columns.push_back(std::move(change));
  }
  return out;
}

std::optional<CatalogPrediction> renamed(const Json& body) {
  const std::string kind = string_at(body, "renameType");
  CatalogPrediction out;
  if (kind == "OBJECT_COLUMN" && string_at(body, "relationType") == "OBJECT_TABLE") {
    if (!read_relation(body, out)) return std::nullopt;
    ColumnChange change;
    change.kind = ColumnChange::Kind::rename;
    change.column = string_at(body, "subname");
    change.new_name = string_at(body, "newname");
    if (change.column.empty() || change.new_name.empty()) return std::nullopt;
    out.columns.push_back(std::move(change));
    return out;
  }
  if (kind == "OBJECT_TABLE") {
    if (!read_relation(body, out)) return std::nullopt;
    out.new_name = string_at(body, "newname");
    if (out.new_name.empty()) return std::nullopt;
    return out;
  }
  return std::nullopt;
}

}  // namespace

std::optional<CatalogPrediction> catalog_prediction(const Json& statement) {
  std::optional<CatalogPrediction> out;
  for_tagged(statement, [&](std::string_view kind, const Json& body) {
    if (kind == "AlterTableStmt")
      out = altered(body);
    else if (kind == "RenameStmt")
      out = renamed(body);
  });
  return out;
}

}  // namespace seedproxy::rewriter
