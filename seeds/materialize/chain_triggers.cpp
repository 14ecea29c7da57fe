// The triggers that keep a seed exact through a chain of lookups (see chain_triggers.hpp).
#include "seeds/materialize/chain_triggers.hpp"

#include <cstdint>

#include "common/identifiers.hpp"
#include "common/text.hpp"
#include "seeds/control/object_mark.hpp"
#include "seeds/materialize/dependency_sql.hpp"

namespace seedproxy::seeds {
namespace {

using namespace dependency_sql;

constexpr const char* kNew = R"sql("seedproxy_new")sql";
constexpr const char* kOld = R"sql("seedproxy_old")sql";
constexpr const char* kChanged = R"sql("seedproxy_changed")sql";
constexpr const char* kMiddle = R"sql("seedproxy_middle")sql";

// A mapping that reaches the seed through exactly one middle table.
bool is_chain(const DependencyMapping& mapping) { return mapping.path.size() == 1; }

bool is_table(const JoinStep& step, const TableDependency& table) {
  return step.schema == table.schema && step.table == table.table;
}

// The lock space of a chain's join keys: in the seed's block of 256 like lock_space, from a hash
// with the level in it, so it rarely meets a seed-key space of the seed (if it does, writers of
// the two levels may wait on one row or deadlock, 40P01, never compute a wrong value).
std::string join_space(const MaterializationTarget& target, const TableDependency& table,
                       std::size_t mapping) {
  const std::uint64_t hash =
      text::fnv1a(table.schema + '\0' + table.table + '\0' + std::to_string(mapping) + "\0join");
  return std::to_string(seed_space(target) |
                        (static_cast<std::uint32_t>(hash ^ (hash >> 32)) & 0xffU));
}

// The join step's equalities as a mapping key, so both ends hash it with key_hash: the middle
// table is the "seed side", the changed table the other.
DependencyMapping join_key(const JoinStep& step) {
  DependencyMapping out;
  for (std::size_t i = 0; i < step.on.size(); ++i) {
    const StepEquality& e = step.equalities[i];
    out.key.push_back({step.on[i].second, step.on[i].first, e.to_type, e.from_type, e.to_hash,
                       e.from_hash, step.operators_sql[i]});
  }
  return out;
}

std::string column_of(const char* alias, const std::string& column) {
  return std::string(alias) + "." + pg::quote_identifier(column);
}

// The middle rows (alias kMiddle) joined with the changed rows of the chain's end.
std::string joins_changed(const JoinStep& step, const std::string& rows) {
  std::string condition;
  for (std::size_t i = 0; i < step.on.size(); ++i) {
    const std::string changed = column_of(kChanged, step.on[i].first);
    const std::string middle = column_of(kMiddle, step.on[i].second);
    const bool changed_left = step.equalities[i].from_left;
    append(condition, " AND ",
           (changed_left ? changed : middle) + " " + step.operators_sql[i] + " " +
               (changed_left ? middle : changed));
  }
  return "EXISTS (SELECT 1 FROM (" + rows + ") AS " + kChanged + " WHERE " + condition + ")";
}

std::string middle_sql(const JoinStep& step) {
  return pg::quote_identifier(step.schema) + "." + pg::quote_identifier(step.table) + " AS " +
         kMiddle;
}

// The seed rows a chain mapping ties to the middle rows that join the changed rows.
std::string chain_affected(const MaterializationPlan& plan, const DependencyMapping& mapping,
                           const std::string& rows) {
  const JoinStep& step = mapping.path.front();
  const auto seed_column = [&](const KeyEquality& key) {
    return plan.alias_sql + "." + pg::quote_identifier(key.seed_column);
  };
  if (mapping.key.size() == 1) {
    const auto& key = mapping.key.front();
    return seed_column(key) + " " + key.operator_sql + " ANY (ARRAY(SELECT DISTINCT " +
           column_of(kMiddle, key.column) + " FROM " + middle_sql(step) + " WHERE " +
           joins_changed(step, rows) + "))";
  }
  std::string condition;
  for (const auto& key : mapping.key)
    append(condition, " AND ",
           seed_column(key) + " " + key.operator_sql + " " + column_of(kMiddle, key.column));
  return "EXISTS (SELECT 1 FROM " + middle_sql(step) + " WHERE " + condition + " AND " +
         joins_changed(step, rows) + ")";
}

// The join keys of the changed rows `rows` of `table`: as the end of a chain (its own column of
// each join equality) and as the middle of another table's chain (the middle's column).
std::string join_pairs(const MaterializationPlan& plan, const TableDependency& table,
                       const std::string& rows) {
  std::string pairs;
  const auto add = [&](const TableDependency& owner, std::size_t m, bool middle_side) {
    const JoinStep& step = owner.mappings[m].path.front();
    const DependencyMapping key = join_key(step);
    const ColumnSql column = [&](std::size_t i) {
      return column_of(kChanged, middle_side ? step.on[i].second : step.on[i].first);
    };
    append(pairs, " UNION ALL ",
           "SELECT " + join_space(plan.target, owner, m) + "::pg_catalog.int4 AS \"space\", " +
               key_hash(key, middle_side, column) + " AS \"hash\" FROM (" + rows + ") AS " +
               kChanged);
  };
  for (std::size_t m = 0; m < table.mappings.size(); ++m)
    if (is_chain(table.mappings[m])) add(table, m, false);
  for (const auto& owner : plan.dependencies.tables)
    for (std::size_t m = 0; m < owner.mappings.size(); ++m)
      if (is_chain(owner.mappings[m]) && is_table(owner.mappings[m].path.front(), table))
        add(owner, m, true);
  return pairs;
}

// For the changed rows `rows`: the join keys first (every level-1 lock before any seed key),
// then, where `table` ends a chain, the seed keys of the middle rows they join, the seed rows in
// key order, and their recomputation through the seed's row trigger (under READ COMMITTED each
// a statement with a new snapshot, taken after the locks were granted).
std::string chain_statements(const MaterializationPlan& plan, const TableDependency& table,
                             const std::string& rows) {
  std::string out = "    " + lock_keys_sql(join_pairs(plan, table, rows));
  std::string pairs, affected;
  for (std::size_t m = 0; m < table.mappings.size(); ++m) {
    const auto& mapping = table.mappings[m];
    if (!is_chain(mapping)) continue;
    const ColumnSql column = [&](std::size_t i) {
      return column_of(kMiddle, mapping.key[i].column);
    };
    append(pairs, " UNION ALL ",
           "SELECT " + lock_space(plan.target, table, m) + "::pg_catalog.int4 AS \"space\", " +
               key_hash(mapping, false, column) + " AS \"hash\" FROM " +
               middle_sql(mapping.path.front()) + " WHERE " +
               joins_changed(mapping.path.front(), rows));
    append(affected, " OR ", chain_affected(plan, mapping, rows));
  }
  if (pairs.empty()) return out;
  std::string key_order;
  for (const auto& key : plan.key_sql) append(key_order, ", ", plan.alias_sql + "." + key);
  return out + "    " + lock_keys_sql(pairs) + "    PERFORM 1 FROM " + plan.table_sql + " AS " +
         plan.alias_sql + " WHERE " + affected + " ORDER BY " + key_order + " FOR UPDATE OF " +
         plan.alias_sql + ";\n    UPDATE " + plan.table_sql + " AS " + plan.alias_sql + " SET " +
         plan.column_sql + " = " + plan.alias_sql + "." + plan.column_sql + " WHERE " + affected +
         ";\n";
}

std::string chain_body(const MaterializationPlan& plan, const TableDependency& table) {
  bool end = false;
  for (const auto& mapping : table.mappings) end = end || is_chain(mapping);
  // TRUNCATE holds ACCESS EXCLUSIVE: nobody reads the table meanwhile, so the seed rows whose
  // value differs are recomputed in one pass. A middle table's own triggers do that for it.
  const std::string truncate = end ? "    UPDATE " + plan.table_sql + " AS " + plan.alias_sql +
                                         " SET " + plan.column_sql + " = " + plan.value_sql +
                                         " WHERE " + plan.alias_sql + "." + plan.column_sql +
                                         " IS DISTINCT FROM " + plan.value_sql + ";\n"
                                   : std::string("    NULL;\n");
  const std::string both =
      std::string("SELECT * FROM ") + kOld + " UNION ALL SELECT * FROM " + kNew;
  return "\nBEGIN\n  IF TG_OP = 'TRUNCATE' THEN\n" + truncate + "  ELSIF TG_OP = 'INSERT' THEN\n" +
         chain_statements(plan, table, std::string("SELECT * FROM ") + kNew) +
         "  ELSIF TG_OP = 'UPDATE' THEN\n" + chain_statements(plan, table, both) + "  ELSE\n" +
         chain_statements(plan, table, std::string("SELECT * FROM ") + kOld) +
         "  END IF;\n  RETURN NULL;\nEND\n";
}

// "<dependency function>_0": its triggers sort, and so fire, before the table's other dependency
// triggers ("..._0_i" < "..._d", "..._i", ...), so its join keys are locked before any seed key.
std::string chain_function_name(const MaterializationTarget& target, const TableDependency& table) {
  return function_name(target, table) + "_0";
}

bool in_a_chain(const MaterializationPlan& plan, const TableDependency& table) {
  for (const auto& owner : plan.dependencies.tables)
    for (const auto& mapping : owner.mappings)
      if (is_chain(mapping) && ((owner.schema == table.schema && owner.table == table.table) ||
                                is_table(mapping.path.front(), table)))
        return true;
  return false;
}

}  // namespace

bool has_direct_mapping(const TableDependency& table) {
  for (const auto& mapping : table.mappings)
    if (mapping.path.empty()) return true;
  return false;
}

void install_chain_triggers(ControlConnection& connection, const MaterializationPlan& plan,
                            const TableDependency& table) {
  if (!in_a_chain(plan, table)) return;
  const std::string function = chain_function_name(plan.target, table);
  check_table(connection, plan, table, function);
  const std::string function_sql =
      pg::quote_identifier(plan.target.schema) + "." + pg::quote_identifier(function);
  const std::string body = chain_body(plan, table);
  const std::string tag = dollar_tag(body);
  // SECURITY DEFINER and a fixed search_path, as the other dependency functions.
  (void)connection.query("creating a chain trigger function",
                         "CREATE OR REPLACE FUNCTION " + function_sql +
                             "() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
                             "SET search_path FROM CURRENT AS " +
                             tag + body + tag);
  (void)connection.query("marking a chain trigger function",
                         "COMMENT ON FUNCTION " + function_sql + "() IS '" + object_mark + "'");
  for (const auto& trigger : kTriggers)
    (void)connection.query("creating a chain trigger",
                           "CREATE OR REPLACE TRIGGER " +
                               pg::quote_identifier(function + trigger.suffix) + " AFTER " +
                               trigger.event + " ON " + table_sql(table) + trigger.referencing +
                               " FOR EACH STATEMENT EXECUTE FUNCTION " + function_sql + "()");
}

}  // namespace seedproxy::seeds
