// The triggers that keep a cross-table seed's column exact (see dependency_triggers.hpp).
#include "seeds/materialize/dependency_triggers.hpp"

#include <cstdio>
#include <variant>

#include "common/identifiers.hpp"
#include "common/text.hpp"
#include "seeds/control/object_mark.hpp"
#include "seeds/materialize/chain_triggers.hpp"
#include "seeds/materialize/dependency_sql.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {
// Shared with chain_triggers.cpp through dependency_sql.hpp.
namespace dependency_sql {

constexpr const char* kMark = object_mark;
// Transition tables of the referenced tables' triggers.
constexpr const char* kNew = R"sql("seedproxy_new")sql";
constexpr const char* kOld = R"sql("seedproxy_old")sql";
constexpr const char* kChanged = R"sql("seedproxy_changed")sql";

// Appends `item` to `out`, after `separator` unless `out` is empty. (GCC 12 sees a false
// -Wrestrict overlap in const char* + std::string&&, so lists are built by appending.)
void append(std::string& out, const char* separator, const std::string& item) {
  if (!out.empty()) out += separator;
  out += item;
}

std::string hex_hash(std::string_view text) {
  const std::uint64_t hash = text::fnv1a(text);
  char out[9];
  std::snprintf(out, sizeof out, "%08x", static_cast<unsigned>(hash ^ (hash >> 32)));
  return out;
}

// "schema.function" as the analysis spells a hash function, quoted part by part.
std::string quoted_function(const std::string& name) {
  const auto dot = name.find('.');
  if (dot == std::string::npos) return pg::quote_identifier(name);
  return pg::quote_identifier(name.substr(0, dot)) + "." +
         pg::quote_identifier(name.substr(dot + 1));
}

// The lock spaces of one seed: a 23-bit number from the seed's name, shifted left by 8 bits, so
// every space of the seed lies in [seed_space, seed_space + 256) and a rollback can forget its key
// locks without knowing its dependencies (which DDL may have made unreadable). Collisions only make
// writers wait.
std::uint32_t seed_space(const MaterializationTarget& target) {
  const std::uint64_t hash =
      text::fnv1a(target.schema + '\0' + target.table + '\0' + target.attribute);
  return (static_cast<std::uint32_t>(hash ^ (hash >> 32)) & 0x7fffffU) << 8;
}

// The lock space of one mapping: the seed's space plus 8 bits from the referenced table and the
// mapping's place among that table's mappings.
std::string lock_space(const MaterializationTarget& target, const TableDependency& table,
                       std::size_t mapping) {
  const std::uint64_t hash =
      text::fnv1a(table.schema + '\0' + table.table + '\0' + std::to_string(mapping));
  return std::to_string(seed_space(target) |
                        (static_cast<std::uint32_t>(hash ^ (hash >> 32)) & 0xffU));
}

// One int4 from the key's columns: each hashed by its operator family's function for its side's
// type (equal keys hash alike across the family's types), combined through hashint8. `column`
// gives the SQL of the i-th key column on the wanted side.
template <typename Column>
std::string key_hash(const DependencyMapping& mapping, bool seed_side, Column column) {
  std::string out;
  for (std::size_t i = 0; i < mapping.key.size(); ++i) {
    const auto& key = mapping.key[i];
    const std::string one = quoted_function(seed_side ? key.seed_hash : key.hash) + "((" +
                            column(i) + ")::" + (seed_side ? key.seed_type : key.type) + ")";
    out = out.empty() ? one
                      : "pg_catalog.hashint8((" + out + ")::pg_catalog.int8 << 32 | (" + one +
                            ")::pg_catalog.int8 & 4294967295)";
  }
  return out;
}

template std::string key_hash(const DependencyMapping&, bool, ColumnSql);  // chain_triggers.cpp

// INSERT ... ON CONFLICT DO UPDATE of the key lock rows (space, hash) that `pairs` (a query with
// columns "space", "hash") yields, in (space, hash) order: the fixed order that keeps two writers
// from waiting on each other.
std::string lock_keys_sql(const std::string& pairs) {
  return std::string("INSERT INTO ") + dependency_locks_table +
         " AS \"seedproxy_lock\" (\"space\", \"hash\")\n    SELECT DISTINCT \"space\", \"hash\" "
         "FROM (" +
         pairs +
         ") AS \"seedproxy_keys\" WHERE \"hash\" IS NOT NULL ORDER BY \"space\", \"hash\"\n"
         "    ON CONFLICT (\"space\", \"hash\") DO UPDATE SET \"writes\" = "
         "\"seedproxy_lock\".\"writes\" + 1;\n";
}

// The condition that a seed row (alias `plan.alias_sql`) is one that `mapping` ties to one of
// `rows`. A single key column compares with an array, which an index on it serves; several
// compare through EXISTS.
std::string matches_changed(const MaterializationPlan& plan, const DependencyMapping& mapping,
                            const std::string& rows) {
  const auto seed_column = [&](const KeyEquality& key) {
    return plan.alias_sql + "." + pg::quote_identifier(key.seed_column);
  };
  const auto changed_column = [&](const KeyEquality& key) {
    return std::string(kChanged) + "." + pg::quote_identifier(key.column);
  };
  if (mapping.key.size() == 1) {
    const auto& key = mapping.key.front();
    return seed_column(key) + " " + key.operator_sql + " ANY (ARRAY(SELECT DISTINCT " +
           changed_column(key) + " FROM (" + rows + ") AS " + kChanged + "))";
  }
  std::string condition;
  for (const auto& key : mapping.key)
    append(condition, " AND ",
           seed_column(key) + " " + key.operator_sql + " " + changed_column(key));
  return "EXISTS (SELECT 1 FROM (" + rows + ") AS " + kChanged + " WHERE " + condition + ")";
}

std::string function_name(const MaterializationTarget& target, const TableDependency& table) {
  return dependency_function_stem(target) + "_" + hex_hash(table.schema + '\0' + table.table);
}

std::string function_sql(const MaterializationTarget& target, const TableDependency& table) {
  return pg::quote_identifier(target.schema) + "." +
         pg::quote_identifier(function_name(target, table));
}

std::string table_sql(const TableDependency& table) {
  return pg::quote_identifier(table.schema) + "." + pg::quote_identifier(table.table);
}

// Whether a key of `mapping` selects at most one seed row: its seed columns include every column
// of the table's key (a primary key or NOT NULL unique key).
bool selects_one_row(const MaterializationPlan& plan, const DependencyMapping& mapping) {
  for (const auto& column : plan.target.key_columns) {
    bool found = false;
    for (const auto& key : mapping.key) found = found || key.seed_column == column;
    if (!found) return false;
  }
  return true;
}

// The ("space", "hash") pairs of the `m`-th mapping's keys among `rows`, for lock_keys_sql.
std::string key_pairs_sql(const MaterializationPlan& plan, const TableDependency& table,
                          std::size_t m, const std::string& rows) {
  const auto& mapping = table.mappings[m];
  return std::string("SELECT ") + lock_space(plan.target, table, m) +
         "::pg_catalog.int4 AS \"space\", " +
         key_hash(mapping, false,
                  [&](std::size_t i) {
                    return std::string(kChanged) + "." +
                           pg::quote_identifier(mapping.key[i].column);
                  }) +
         " AS \"hash\" FROM (" + rows + ") AS " + kChanged;
}

// Rewrites the seed rows where `condition` holds (`SET col = col`), so that the seed's row trigger
// computes their column again.
std::string rewrite_sql(const MaterializationPlan& plan, const std::string& condition) {
  return "UPDATE " + plan.table_sql + " AS " + plan.alias_sql + " SET " + plan.column_sql + " = " +
         plan.alias_sql + "." + plan.column_sql + " WHERE " + condition + ";\n";
}

// The PL/pgSQL variable that holds how many key lock rows the last upsert wrote.
constexpr const char* kLockedKeys = R"sql("seedproxy_locked_keys")sql";

// For one kind of change, the rows of the referenced table it touched (`rows`: a query), the
// general path's three statements: lock the affected keys, lock the affected seed rows in key
// order, and rewrite them, which makes the seed's row trigger compute the column again (under READ
// COMMITTED in a statement of its own, with a new snapshot: it sees every transaction that held
// these keys before). The second only orders the row locks of several seed rows, so it is left out
// when the statement locked one key (ROW_COUNT of the upsert) and every mapping's key selects one
// seed row.
std::string locked_recompute_sql(const MaterializationPlan& plan, const TableDependency& table,
                                 const std::string& rows) {
  std::string pairs, affected;
  bool one_row_per_key = true;
  for (std::size_t m = 0; m < table.mappings.size(); ++m) {
    const auto& mapping = table.mappings[m];
    append(pairs, " UNION ALL ", key_pairs_sql(plan, table, m, rows));
    append(affected, " OR ", matches_changed(plan, mapping, rows));
    one_row_per_key = one_row_per_key && selects_one_row(plan, mapping);
  }
  std::string key_order;
  for (const auto& key : plan.key_sql) append(key_order, ", ", plan.alias_sql + "." + key);
  std::string lock_rows = "PERFORM 1 FROM " + plan.table_sql + " AS " + plan.alias_sql + " WHERE " +
                          affected + " ORDER BY " + key_order + " FOR UPDATE OF " + plan.alias_sql +
                          ";\n";
  if (one_row_per_key)
    lock_rows = std::string("GET DIAGNOSTICS ") + kLockedKeys + " = ROW_COUNT;\n    IF " +
                kLockedKeys + " > 1 THEN\n      " + lock_rows + "    END IF;\n";
  return "    " + lock_keys_sql(pairs) + "    " + lock_rows + "    " + rewrite_sql(plan, affected);
}

// The PL/pgSQL variable that holds how many seed rows the one-key path's UPDATE rewrote.
constexpr const char* kRewritten = R"sql("seedproxy_rewritten")sql";

// Whether the key's `=` is exactly the equality of a unique index on the seed's column: the
// built-in `=` between integer types or of uuid. A looser one (a nondeterministic collation on
// text, an operator of another schema) could match a second seed row the UPDATE cannot see, which
// only the key lock would make the writer wait for.
bool exact_equality(const KeyEquality& key) {
  const auto exact_type = [](const std::string& type) {
    return type == "smallint" || type == "integer" || type == "bigint" || type == "uuid";
  };
  return key.operator_sql == "OPERATOR(pg_catalog.=)" && exact_type(key.seed_type) &&
         exact_type(key.type) && (key.seed_type == "uuid") == (key.type == "uuid");
}

// Whether a change to `table` can take the one-key path: its only mapping is direct, its key
// selects at most one seed row, and compares with exact equalities.
bool one_key_path(const MaterializationPlan& plan, const TableDependency& table) {
  if (table.mappings.size() != 1 || !table.mappings.front().path.empty() ||
      !selects_one_row(plan, table.mappings.front()))
    return false;
  for (const auto& key : table.mappings.front().key)
    if (!exact_equality(key)) return false;
  return true;
}

// The label of the dependency function's block, which qualifies its variables where SQL reads
// them: under `#variable_conflict use_column` a column of the seed's table named like a variable
// would otherwise be read instead.
constexpr const char* kBlock = R"sql("seedproxy_dependency")sql";

// The PL/pgSQL variables holding the least and greatest value of the i-th key column among the
// changed rows; `qualified` for SQL.
std::string bound(std::size_t i, bool greatest, bool qualified = false) {
  return (qualified ? std::string(kBlock) + "." : std::string()) +
         (greatest ? "\"seedproxy_hi" : "\"seedproxy_lo") + std::to_string(i) + "\"";
}

// Their declarations, typed as the referenced table's key columns.
std::string bound_declarations(const TableDependency& table) {
  std::string out;
  for (std::size_t i = 0; i < table.mappings.front().key.size(); ++i)
    for (const bool greatest : {false, true})
      out += "  " + bound(i, greatest) + " " + table_sql(table) + "." +
             pg::quote_identifier(table.mappings.front().key[i].column) + "%TYPE;\n";
  return out;
}

// Stores each key column's least and greatest value among `rows` (NULLs left out; uuid, which has
// no min or max, through its text form, equal exactly when the uuids are).
std::string bounds_sql(const DependencyMapping& mapping, const std::string& rows) {
  std::string values, into;
  for (std::size_t i = 0; i < mapping.key.size(); ++i) {
    const auto& key = mapping.key[i];
    const std::string column = std::string(kChanged) + "." + pg::quote_identifier(key.column);
    for (const char* aggregate : {"pg_catalog.min", "pg_catalog.max"})
      append(values, ", ",
             key.type == "uuid"
                 ? std::string("(") + aggregate + "((" + column + ")::pg_catalog.text))::uuid"
                 : std::string(aggregate) + "(" + column + ")");
    append(into, ", ", bound(i, false) + ", " + bound(i, true));
  }
  return "    SELECT " + values + " INTO " + into + " FROM (" + rows + ") AS " + kChanged + ";\n";
}

// The statements for one kind of change where one_key_path holds. A change whose rows all have
// one key (each key column's least value is its greatest) rewrites that key's seed row first: the
// UPDATE holds the row's lock to commit, which orders this writer after and before every other
// writer of the key, since each of them rewrites the same row (materialization.md, "The one-key
// path"). Only when no visible seed row has the key (none yet, an uncommitted INSERT, one moving
// there, or one just deleted or moved away) does it take the key lock, which an INSERT or move of
// a seed row holds too, and look again with a new snapshot. Rows of several keys take the general
// path (locked_recompute_sql); where a key column is NULL in every row, no row selects a seed row.
std::string recompute_sql(const MaterializationPlan& plan, const TableDependency& table,
                          const std::string& rows) {
  if (!one_key_path(plan, table)) return locked_recompute_sql(plan, table, rows);
  const auto& mapping = table.mappings.front();
  std::string one_key, some_key, at_key;
  for (std::size_t i = 0; i < mapping.key.size(); ++i) {
    const auto& key = mapping.key[i];
    append(one_key, " AND ", bound(i, false) + " = " + bound(i, true));
    append(some_key, " AND ", bound(i, false) + " IS NOT NULL");
    append(at_key, " AND ",
           plan.alias_sql + "." + pg::quote_identifier(key.seed_column) + " " + key.operator_sql +
               " " + bound(i, false, true));
  }
  const std::string update = rewrite_sql(plan, at_key);
  return bounds_sql(mapping, rows) + "    IF " + one_key + " THEN\n      " + update +
         "      GET DIAGNOSTICS " + kRewritten + " = ROW_COUNT;\n      IF " + kRewritten +
         " = 0 THEN\n        " + lock_keys_sql(key_pairs_sql(plan, table, 0, rows)) + "        " +
         update + "      END IF;\n    ELSIF " + some_key + " THEN\n" +
         locked_recompute_sql(plan, table, rows) + "    END IF;\n";
}

std::string function_body(const MaterializationPlan& plan, const TableDependency& table) {
  const std::string all_rows =
      std::string("SELECT * FROM ") + kOld + " UNION ALL SELECT * FROM " + kNew;
  const std::string one_key_variables =
      one_key_path(plan, table)
          ? "  " + std::string(kRewritten) + " pg_catalog.int8;\n" + bound_declarations(table)
          : std::string();
  return std::string("\n#variable_conflict use_column\n<<") + kBlock + ">>\nDECLARE\n  " +
         kLockedKeys + " pg_catalog.int8;\n" + one_key_variables +
         "BEGIN\n  IF TG_OP = 'TRUNCATE' THEN\n    UPDATE " + plan.table_sql + " AS " +
         plan.alias_sql + " SET " + plan.column_sql + " = " + plan.value_sql + " WHERE " +
         plan.alias_sql + "." + plan.column_sql + " IS DISTINCT FROM " + plan.value_sql +
         ";\n  ELSIF TG_OP = 'INSERT' THEN\n" +
         recompute_sql(plan, table, std::string("SELECT * FROM ") + kNew) +
         "  ELSIF TG_OP = 'UPDATE' THEN\n" + recompute_sql(plan, table, all_rows) + "  ELSE\n" +
         recompute_sql(plan, table, std::string("SELECT * FROM ") + kOld) +
         "  END IF;\n  RETURN NULL;\nEND\n";
}

std::string dollar_tag(const std::string& body) {
  for (int n = 0;; ++n) {
    const std::string tag = "$seedproxy" + (n ? std::to_string(n) : std::string()) + "$";
    if (body.find(tag) == std::string::npos) return tag;
  }
}

// Fails when the referenced table is gone or holds an object of our name that is not ours.
void check_table(ControlConnection& connection, const MaterializationPlan& plan,
                 const TableDependency& table, const std::string& function) {
  const auto found = connection.query(
      "looking up a table the seed reads",
      "SELECT c.oid, (SELECT pg_catalog.obj_description(p.oid, 'pg_proc') IS DISTINCT FROM $4 "
      "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace pn ON pn.oid = p.pronamespace "
      "WHERE pn.nspname = $3 AND p.proname = $5 AND p.pronargs = 0) "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'",
      {table.schema, table.table, plan.target.schema, kMark, function});
  if (PQntuples(found.get()) != 1)
    throw MaterializationRefused("seed " + plan.name + " cannot be materialized: the table " +
                                 table.schema + "." + table.table +
                                 " it reads no longer exists (or is no longer a plain table)");
  if (std::string(PQgetvalue(found.get(), 0, 1)) == "t")
    throw MaterializationRefused("seed " + plan.name + " cannot be materialized: a function " +
                                 plan.target.schema + "." + function +
                                 "() exists that seedproxy did not create");
}

}  // namespace dependency_sql

using namespace dependency_sql;

std::string dependency_function_stem(const MaterializationTarget& target) {
  return std::string("seedproxy_dep_") +
         hex_hash(target.schema + '\0' + target.table + '\0' + target.attribute);
}

CrossTableDependencies read_cross_table_dependencies(ControlConnection& connection,
                                                     const MaterializationTarget& target) {
  config::SeedSpec spec;
  spec.database = "(this database)";
  spec.entity = pg::quote_identifier(target.schema) + "." + pg::quote_identifier(target.table);
  spec.attribute = target.attribute;
  spec.type = target.type;
  spec.expression = target.expression;
  ValidationOptions options;
  options.column_added_by_proxy = true;
  // The planner's cost judged the seed's reads when it was declared, under the configured bound
  // the engine does not know; materializing is what makes an expensive seed cheap to read, so it
  // is no reason to refuse here.
  options.bounds.cost_action = config::CostAction::warn;
  auto verdict = validate_seed(connection, spec, options);
  CrossTableDependencies out;
  if (const auto* refusal = std::get_if<Refusal>(&verdict)) {
    out.refusal = "it no longer validates: " + refusal->message;
    return out;
  }
  auto& validated = std::get<ValidatedSeed>(verdict);
  out.dependencies = std::move(validated.dependencies);
  out.refusal = out.dependencies.refusal;
  return out;
}

std::string seed_row_key_locks(const MaterializationPlan& plan) {
  std::string pairs, key_changed;
  for (const auto& table : plan.dependencies.tables)
    for (std::size_t m = 0; m < table.mappings.size(); ++m) {
      const auto& mapping = table.mappings[m];
      append(pairs, " UNION ALL ",
             std::string("SELECT ") + lock_space(plan.target, table, m) + "::pg_catalog.int4, " +
                 key_hash(mapping, true, [&](std::size_t i) {
                   return std::string("NEW.") + pg::quote_identifier(mapping.key[i].seed_column);
                 }));
      for (const auto& key : mapping.key) {
        const std::string column = pg::quote_identifier(key.seed_column);
        append(key_changed, " OR ", "OLD." + column + " IS DISTINCT FROM NEW." + column);
      }
    }
  if (pairs.empty()) return {};
  return "  IF TG_OP = 'INSERT' THEN\n    \"seedproxy_lock_keys\" := true;\n"
         "  ELSIF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN\n"
         "    \"seedproxy_lock_keys\" := true;\n  ELSE\n    \"seedproxy_lock_keys\" := " +
         key_changed + ";\n  END IF;\n  IF \"seedproxy_lock_keys\" THEN\n    " +
         lock_keys_sql("SELECT * FROM (" + pairs +
                       ") AS \"seedproxy_pairs\" (\"space\", \"hash\")") +
         "  END IF;\n";
}

void install_dependency_triggers(ControlConnection& connection, const MaterializationPlan& plan,
                                 const TableDependency& table) {
  install_chain_triggers(connection, plan, table);  // chain_triggers.hpp: fire first
  if (!has_direct_mapping(table)) return;
  const std::string function = function_name(plan.target, table);
  check_table(connection, plan, table, function);
  const std::string body = function_body(plan, table);
  const std::string tag = dollar_tag(body);
  // SECURITY DEFINER: a writer of the referenced table need not be allowed to update the seed's
  // table or the registry's key locks; search_path is the validated one whoever writes.
  (void)connection.query("creating a dependency trigger function",
                         "CREATE OR REPLACE FUNCTION " + function_sql(plan.target, table) +
                             "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                             "SET search_path FROM CURRENT AS " +
                             tag + body + tag);
  (void)connection.query(
      "marking a dependency trigger function",
      "COMMENT ON FUNCTION " + function_sql(plan.target, table) + "() IS '" + kMark + "'");
  for (const auto& trigger : kTriggers)
    (void)connection.query(
        "creating a dependency trigger",
        "CREATE OR REPLACE TRIGGER " + pg::quote_identifier(function + trigger.suffix) + " AFTER " +
            trigger.event + " ON " + table_sql(table) + trigger.referencing +
            " FOR EACH STATEMENT EXECUTE FUNCTION " + function_sql(plan.target, table) + "()");
}

void remove_dependency_triggers(ControlConnection& connection, const MaterializationPlan& plan) {
  const std::string stem = dependency_function_stem(plan.target);
  const auto triggers = connection.query(
      "finding the seed's dependency triggers",
      "SELECT pg_catalog.quote_ident(t.tgname), t.tgrelid::pg_catalog.regclass::text "
      "FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
      "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
      "WHERE n.nspname = $1 AND pg_catalog.left(p.proname, pg_catalog.length($2)) = $2 "
      "AND pg_catalog.obj_description(p.oid, 'pg_proc') = $3",
      {plan.target.schema, stem, kMark});
  for (int row = 0; row < PQntuples(triggers.get()); ++row)
    (void)connection.query("dropping a dependency trigger", std::string("DROP TRIGGER IF EXISTS ") +
                                                                PQgetvalue(triggers.get(), row, 0) +
                                                                " ON " +
                                                                PQgetvalue(triggers.get(), row, 1));
  const auto functions = connection.query(
      "finding the seed's dependency trigger functions",
      "SELECT pg_catalog.quote_ident(p.proname) FROM pg_catalog.pg_proc p "
      "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
      "WHERE n.nspname = $1 AND pg_catalog.left(p.proname, pg_catalog.length($2)) = $2 "
      "AND pg_catalog.obj_description(p.oid, 'pg_proc') = $3 AND p.pronargs = 0",
      {plan.target.schema, stem, kMark});
  for (int row = 0; row < PQntuples(functions.get()); ++row)
    (void)connection.query("dropping a dependency trigger function",
                           "DROP FUNCTION IF EXISTS " + pg::quote_identifier(plan.target.schema) +
                               "." + PQgetvalue(functions.get(), row, 0) + "()");
  // The last space is first + 255: first + 256 would not fit an int4 for the highest seed space.
  const std::uint32_t first = seed_space(plan.target);
  (void)connection.query("forgetting the seed's key locks",
                         std::string("DELETE FROM ") + dependency_locks_table +
                             " WHERE \"space\" BETWEEN $1::pg_catalog.int4 AND $2::pg_catalog.int4",
                         {std::to_string(first), std::to_string(first + 255)});
}

}  // namespace seedproxy::seeds
