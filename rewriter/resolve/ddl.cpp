// DDL that names a seed (ALTER TABLE … ADD / ALTER / DROP COLUMN, RENAME COLUMN): a live seed is
// a column to every client, so each such command gets what PostgreSQL gives for a stored
// generated column, and the commands a seed cannot obey (DROP, RENAME, a new type, dropping its
// expression) are refused with a sentence saying what to do instead. Refusals replace the
// statement with the refusal marker, so the client's transaction aborts as it would upstream.
#include <algorithm>

#include "common/identifiers.hpp"
#include "common/sqlstate.hpp"
#include "common/text.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {
namespace {

// 'column "risk_score" of relation "account"', as PostgreSQL's tablecmds.c words it.
std::string column_of(std::string_view column, const Relation& relation) {
  return "column \"" + std::string(column) + "\" of relation \"" + relation.name + "\"";
}

// The admin console names a seed as stored, unquoted (docs/admin.md).
std::string rollback_command(const VirtualAttribute& seed) {
  return "ROLLBACK " + seed.schema + "." + seed.table + "." + seed.name;
}

const VirtualAttribute* seed_named(const std::vector<const VirtualAttribute*>& seeds,
                                   std::string_view name) {
  const auto it = std::find_if(seeds.begin(), seeds.end(),
                               [&](const VirtualAttribute* s) { return s->name == name; });
  return it == seeds.end() ? nullptr : *it;
}

// The live seeds of the table whose expression reads `column`.
std::vector<const VirtualAttribute*> readers_of(const std::vector<const VirtualAttribute*>& seeds,
                                                std::string_view column) {
  std::vector<const VirtualAttribute*> out;
  for (const auto* seed : seeds) {
    const auto read = seed->expression.columns();
    if (std::find(read.begin(), read.end(), column) != read.end()) out.push_back(seed);
  }
  return out;
}

// Whether a seed's declared type is one an identity column may have.
bool integer_type(std::string_view type) {
  std::string name;
  for (const char c : type)
    if (c != ' ' && c != '"') name += text::ascii_lower(c);
  if (name.starts_with("pg_catalog.")) name.erase(0, 11);
  for (const std::string_view integer :
       {"smallint", "integer", "int", "bigint", "int2", "int4", "int8"})
    if (name == integer) return true;
  return false;
}

bool has_physical(const Relation& relation, std::string_view column) {
  return std::find(relation.columns.begin(), relation.columns.end(), column) !=
         relation.columns.end();
}

}  // namespace

const Relation* Resolver::ddl_relation(const Json& range_var) const {
  if (!string_at(range_var, "catalogname").empty()) return nullptr;
  const auto schema = string_at(range_var, "schemaname");
  const auto name = string_at(range_var, "relname");
  return schema.empty() ? request_.catalog.resolve(request_.search_path, name)
                        : request_.catalog.find(schema, name);
}

void Resolver::alter_table(const Json& body) {
  const auto objtype = body.value("objtype", "");
  if (objtype != "OBJECT_TABLE" && objtype != "OBJECT_FOREIGN_TABLE") return;
  const Relation* relation = ddl_relation(node_at(body, "relation"));
  if (!relation) return;
  const auto seeds = request_.seeds.live_for(relation->schema, relation->name);
  if (seeds.empty()) return;
  const auto& cmds = list_at(body, "cmds");
  std::vector<bool> skipped(cmds.size(), false);
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    const auto outcome = alter_command(node_at(cmds[i], "AlterTableCmd"), *relation, seeds);
    if (rewrite_error_) return;
    skipped[i] = outcome == DdlOutcome::skipped;
  }
  if (std::find(skipped.begin(), skipped.end(), true) == skipped.end()) return;
  skip_commands(body, *relation, skipped);
}

// One subcommand: left to PostgreSQL, skipped as PostgreSQL skips it for an existing column, or
// refused (rewrite_error_ set).
Resolver::DdlOutcome Resolver::alter_command(const Json& cmd, const Relation& relation,
                                             const std::vector<const VirtualAttribute*>& seeds) {
  const auto subtype = cmd.value("subtype", "");
  const bool missing_ok = cmd.value("missing_ok", false);
  if (subtype == "AT_AddColumn") {
    const auto name = string_at(node_at(node_at(cmd, "def"), "ColumnDef"), "colname");
    if (!seed_named(seeds, name)) return DdlOutcome::passed;
    // A materialized seed's column exists upstream: PostgreSQL says all this itself.
    if (missing_ok) return has_physical(relation, name) ? DdlOutcome::passed : DdlOutcome::skipped;
    refuse(sqlstate::duplicate_column, column_of(name, relation) + " already exists", {});
    return DdlOutcome::refused;
  }
  const auto name = string_at(cmd, "name");
  if (const auto* seed = seed_named(seeds, name))
    return seed_command(subtype, missing_ok, *seed, relation,
                        node_at(node_at(cmd, "def"), "ColumnDef").contains("raw_default"));
  if (subtype == "AT_DropColumn" || subtype == "AT_AlterColumnType")
    input_command(subtype, cmd.value("behavior", "") == "DROP_CASCADE", name, relation, seeds);
  return rewrite_error_ ? DdlOutcome::refused : DdlOutcome::passed;
}

Resolver::DdlOutcome Resolver::seed_command(std::string_view subtype, bool missing_ok,
                                            const VirtualAttribute& seed, const Relation& relation,
                                            bool using_clause) {
  const std::string column = column_of(seed.name, relation);
  const std::string generated = "Column \"" + seed.name + "\" is a generated column.";
  const std::string how_to_roll_back = "Roll the seed back on seedproxy's admin console instead (" +
                                       rollback_command(seed) +
                                       "): clients then see the table as after DROP COLUMN.";
  if (subtype == "AT_ColumnDefault") {
    refuse(sqlstate::syntax_error, column + " is a generated column", {});
  } else if (subtype == "AT_AlterColumnType" && using_clause) {
    refuse(sqlstate::invalid_column_definition,
           "cannot specify USING when altering type of generated column", generated);
  } else if (subtype == "AT_AlterColumnType") {
    refuse(sqlstate::feature_not_supported,
           "cannot alter type of " + column + ": it is a seed of seedproxy",
           "Change the type in the seed's declaration; a materialized seed must be rolled back "
           "first (" +
               rollback_command(seed) + ").");
  } else if (subtype == "AT_DropColumn") {
    refuse(sqlstate::feature_not_supported, "cannot drop " + column + ": it is a seed of seedproxy",
           how_to_roll_back);
  } else if (subtype == "AT_DropExpression") {
    refuse(sqlstate::feature_not_supported,
           "cannot drop the expression of " + column + ": it is a seed of seedproxy",
           "A seed is computed by its expression in every phase. " + how_to_roll_back);
  } else if (subtype == "AT_AddIdentity" && !integer_type(seed.type)) {
    refuse(sqlstate::invalid_parameter_value,
           "identity column type must be smallint, integer, or bigint", {});
  } else if (subtype == "AT_AddIdentity") {
    refuse(sqlstate::object_not_in_prerequisite_state,
           column + " must be declared NOT NULL before identity can be added", {});
  } else if (subtype == "AT_DropIdentity" && missing_ok) {
    return DdlOutcome::skipped;
  } else if (subtype == "AT_SetIdentity" || subtype == "AT_DropIdentity") {
    refuse(sqlstate::object_not_in_prerequisite_state, column + " is not an identity column", {});
  } else if (!(seed.phase == Phase::materialized && has_physical(relation, seed.name))) {
    // NOT NULL, statistics, storage, options, compression: a materialized seed's column takes
    // them as any column does; a seed without its own column has nothing to take them.
    refuse(sqlstate::feature_not_supported,
           "cannot alter " + column + ": it is a seed of seedproxy without a column of its own",
           "Only a materialized seed has a column of its own for NOT NULL, statistics, storage "
           "and options to apply to.");
  }
  return rewrite_error_ ? DdlOutcome::refused : DdlOutcome::passed;
}

// DROP COLUMN or ALTER COLUMN … TYPE of a column a seed's expression reads.
void Resolver::input_command(std::string_view subtype, bool cascade, const std::string& name,
                             const Relation& relation,
                             const std::vector<const VirtualAttribute*>& seeds) {
  const auto readers = readers_of(seeds, name);
  if (readers.empty()) return;
  if (subtype == "AT_AlterColumnType")
    return refuse(
        sqlstate::feature_not_supported, "cannot alter type of a column used by a generated column",
        "Column \"" + name + "\" is used by generated column \"" + readers[0]->name + "\".");
  const std::string table = "table " + pg::quote_identifier_if_needed(relation.name);
  if (cascade)
    return refuse(sqlstate::feature_not_supported,
                  "cannot drop column " + name + " of " + table + ": seed \"" + readers[0]->name +
                      "\" of seedproxy reads it",
                  "Roll the seed back first on seedproxy's admin console (" +
                      rollback_command(*readers[0]) + "), then drop the column.");
  std::string detail;
  for (const auto* seed : readers) {
    if (!detail.empty()) detail += '\n';
    detail += "column " + seed->name + " of " + table;
    detail += " depends on column " + name + " of " + table;
  }
  refuse(sqlstate::dependent_objects_still_exist,
         "cannot drop column " + name + " of " + table + " because other objects depend on it",
         detail);
}

// ALTER TABLE … RENAME [COLUMN] a TO b.
void Resolver::rename(const Json& body) {
  if (body.value("renameType", "") != "OBJECT_COLUMN") return;
  const Relation* relation = ddl_relation(node_at(body, "relation"));
  if (!relation) return;
  const auto seeds = request_.seeds.live_for(relation->schema, relation->name);
  const auto from = string_at(body, "subname");
  const auto to = string_at(body, "newname");
  if (const auto* seed = seed_named(seeds, from))
    return refuse(sqlstate::feature_not_supported,
                  "cannot rename " + column_of(from, *relation) + ": it is a seed of seedproxy",
                  "Declare a seed of the new name, then roll this one back on seedproxy's admin "
                  "console (" +
                      rollback_command(*seed) + ").");
  if (seed_named(seeds, to) && !has_physical(*relation, to))
    return refuse(sqlstate::duplicate_column, column_of(to, *relation) + " already exists", {});
  if (const auto readers = readers_of(seeds, from); !readers.empty())
    refuse(sqlstate::feature_not_supported,
           "cannot rename " + column_of(from, *relation) + ": seed \"" + readers[0]->name +
               "\" of seedproxy reads it by name",
           "Roll the seed back first (" + rollback_command(*readers[0]) +
               " on seedproxy's admin console), rename, and declare it again with the new name.");
}

// Takes out the subcommands PostgreSQL would skip (ADD COLUMN IF NOT EXISTS of a seed's name,
// DROP IDENTITY IF EXISTS of a seed). When none is left, "SET LOGGED" (or UNLOGGED) stands in:
// for a table that already is so, PostgreSQL takes the same lock, checks the same ownership and
// changes nothing. Its notice ("… already exists, skipping") is not given.
void Resolver::skip_commands(const Json& body, const Relation& relation,
                             const std::vector<bool>& skipped) {
  const auto extents = command_extents(body, skipped.size());
  if (extents.empty()) return;
  if (std::all_of(skipped.begin(), skipped.end(), [](bool s) { return s; })) {
    if (body.value("objtype", "") != "OBJECT_TABLE" ||
        (relation.kind != 'r' && relation.kind != 'p'))
      return;  // nothing stands in: PostgreSQL's own answer
    out_.edits.push_back({extents.front().first, extents.back().second,
                          relation.unlogged ? "SET UNLOGGED" : "SET LOGGED"});
    return;
  }
  // A run of skipped commands goes with the comma before it (after it, at the start).
  for (std::size_t a = 0; a < skipped.size();) {
    if (!skipped[a]) {
      ++a;
      continue;
    }
    std::size_t b = a;
    while (b + 1 < skipped.size() && skipped[b + 1]) ++b;
    if (a > 0)
      out_.edits.push_back({extents[a - 1].second, extents[b].second, ""});
    else
      out_.edits.push_back({extents[a].first, extents[b + 1].first, ""});
    a = b + 1;
  }
}

// The byte extents of an ALTER TABLE's subcommands: after the relation, split at commas outside
// parentheses, up to the statement's end. Empty when they do not number `count`.
std::vector<std::pair<int, int>> Resolver::command_extents(const Json& body,
                                                           std::size_t count) const {
  const auto extent = relation_extent_of(node_at(body, "relation"));
  if (!extent) return {};
  auto i = static_cast<std::size_t>(
      std::lower_bound(tokens_.begin(), tokens_.end(), extent->end,
                       [](const Token& t, int at) { return t.start < at; }) -
      tokens_.begin());
  std::vector<std::pair<int, int>> out;
  int depth = 0;
  for (; i < tokens_.size() && !(depth == 0 && tokens_[i].single == ';'); ++i) {
    const Token& t = tokens_[i];
    if (out.empty() || (depth == 0 && t.single == ',')) {
      if (t.single == ',') ++i;
      if (i >= tokens_.size()) return {};
      out.push_back({tokens_[i].start, tokens_[i].end});
    }
    if (tokens_[i].single == '(') ++depth;
    if (tokens_[i].single == ')') --depth;
    out.back().second = tokens_[i].end;
  }
  if (out.size() != count) return {};
  return out;
}

}  // namespace seedproxy::rewriter
