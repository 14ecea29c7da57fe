// Catalog effects of statements: a lexical gate for the common case (no DDL), then the parse tree
// statement by statement. The rule, with its reasons, is in docs/architecture.md ("Catalog
// refresh after DDL").
#include "rewriter/statements/catalog_effect.hpp"

#include <algorithm>

#include "rewriter/parse/parse_tree.hpp"
#include "rewriter/parse/pg_parser.hpp"
#include "rewriter/statements/statement_clues.hpp"

namespace seedproxy::rewriter {
namespace {

bool relation_kind(std::string_view object_type) noexcept {
  return object_type == "OBJECT_TABLE" || object_type == "OBJECT_VIEW" ||
         object_type == "OBJECT_MATVIEW" || object_type == "OBJECT_FOREIGN_TABLE";
}

// A relation the statement creates: temporary ones are not in the resolver's catalog.
void created(const Json& range_var, CatalogEffect& effect) {
  if (string_at(range_var, "relpersistence") == "t" ||
      string_at(range_var, "schemaname") == "pg_temp")
    return;
  effect.add_name(string_at(range_var, "relname"));
}

// ALTER TABLE / VIEW / TYPE: only adding or dropping columns changes what the resolver reads.
void altered(const Json& body, CatalogEffect& effect) {
  const std::string kind = string_at(body, "objtype");
  bool columns = false, cascade = false;
  for (const Json& item : list_at(body, "cmds")) {
    const Json& command = node_at(item, "AlterTableCmd");
    const std::string subtype = string_at(command, "subtype");
    if (subtype.starts_with("AT_AddColumn") || subtype.starts_with("AT_DropColumn")) {
      columns = true;
      cascade = cascade || string_at(command, "behavior") == "DROP_CASCADE";
    }
  }
  if (!columns) return;
  // A composite type's attributes reach the tables typed by it; CASCADE reaches views.
  if (kind == "OBJECT_TYPE" || cascade)
    effect.everything = true;
  else if (relation_kind(kind))
    effect.add_name(string_at(node_at(body, "relation"), "relname"));
}

void renamed(const Json& body, CatalogEffect& effect) {
  const std::string kind = string_at(body, "renameType");
  const std::string relation = string_at(node_at(body, "relation"), "relname");
  if (relation_kind(kind)) {
    effect.add_name(relation);
    effect.add_name(string_at(body, "newname"));
  } else if (kind == "OBJECT_COLUMN") {
    effect.add_name(relation);
  } else if (kind == "OBJECT_ATTRIBUTE" || kind == "OBJECT_SCHEMA") {
    effect.everything = true;  // typed tables, or every relation of the schema
  }
}

void dropped(const Json& body, CatalogEffect& effect) {
  const std::string kind = string_at(body, "removeType");
  if (string_at(body, "behavior") == "DROP_CASCADE" || kind == "OBJECT_SCHEMA" ||
      kind == "OBJECT_EXTENSION") {
    effect.everything = true;
    return;
  }
  if (!relation_kind(kind)) return;
  for (const Json& object : list_at(body, "objects")) {
    const auto& names = list_at(node_at(object, "List"), "items");
    if (!names.empty())
      effect.add_name(string_at(node_at(names[names.size() - 1], "String"), "sval"));
  }
}

void statement_effect(const Json& statement, CatalogEffect& effect) {
  for_tagged(statement, [&](std::string_view kind, const Json& body) {
    if (kind == "CreateStmt") {
      created(node_at(body, "relation"), effect);
    } else if (kind == "CreateForeignTableStmt") {
      created(node_at(node_at(body, "base"), "relation"), effect);
    } else if (kind == "CreateTableAsStmt") {
      created(node_at(node_at(body, "into"), "rel"), effect);
    } else if (kind == "SelectStmt") {
      if (body.contains("intoClause")) created(node_at(node_at(body, "intoClause"), "rel"), effect);
    } else if (kind == "ViewStmt") {
      created(node_at(body, "view"), effect);
    } else if (kind == "AlterTableStmt") {
      altered(body, effect);
    } else if (kind == "RenameStmt") {
      renamed(body, effect);
    } else if (kind == "AlterObjectSchemaStmt") {
      if (relation_kind(string_at(body, "objectType")))
        effect.add_name(string_at(node_at(body, "relation"), "relname"));
    } else if (kind == "DropStmt") {
      dropped(body, effect);
    } else if (kind == "CreateSchemaStmt") {
      for (const Json& element : list_at(body, "schemaElts")) statement_effect(element, effect);
    } else if (kind == "ExplainStmt") {
      statement_effect(node_at(body, "query"), effect);  // EXPLAIN ANALYZE CREATE TABLE AS
    } else if (kind == "DropOwnedStmt" || kind == "CreateExtensionStmt" ||
               kind == "AlterExtensionStmt" || kind == "AlterExtensionContentsStmt" ||
               kind == "ImportForeignSchemaStmt" || kind == "DoStmt" || kind == "CallStmt") {
      effect.everything = true;  // objects not named in the text
    }
  });
}

}  // namespace

void CatalogEffect::add_name(std::string name) {
  if (name.empty()) return;
  const auto at = std::lower_bound(names.begin(), names.end(), name);
  if (at == names.end() || *at != name) names.insert(at, std::move(name));
}

void CatalogEffect::merge(const CatalogEffect& other) {
  if (other.empty() && !other.prediction) return;
  prediction = empty() && !prediction ? other.prediction : std::nullopt;
  everything = everything || other.everything;
  for (const auto& name : other.names) add_name(name);
}

bool might_change_catalog(std::string_view sql) noexcept {
  return statement_clues(sql).catalog_change;
}

CatalogEffect catalog_effect(std::string_view sql) {
  CatalogEffect effect;
  if (!might_change_catalog(sql)) return effect;
  // Text the parser refuses, PostgreSQL (the same grammar) refuses too: it changes nothing.
  const auto shared = parse_sql_shared(sql);
  const ParsedSql& parsed = *shared;
  if (parsed.failure) return effect;
  const Json& statements = list_at(parsed.tree.root(), "stmts");
  for (const Json& statement : statements) statement_effect(node_at(statement, "stmt"), effect);
  if (statements.size() == 1 && !effect.empty() && !effect.everything)
    effect.prediction = catalog_prediction(node_at(statements[0], "stmt"));
  return effect;
}

bool catalog_command_tag(std::string_view tag) noexcept {
  for (std::string_view verb : {"CREATE", "ALTER", "DROP", "IMPORT"})
    if (tag.starts_with(verb)) return true;
  return tag == "DO" || tag == "CALL";
}

}  // namespace seedproxy::rewriter
