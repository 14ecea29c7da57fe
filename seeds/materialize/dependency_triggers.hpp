// What keeps a materialized cross-table seed exact when the tables it reads change: for every
// referenced table, statement-level AFTER triggers (transition tables) that lock the affected seed
// keys in a fixed order, lock the seed rows in key order, and recompute them in a statement that
// sees what committed meanwhile; and, in the seed table's own row trigger, the same key locks for
// a row that is inserted or changes its keys. The argument: docs/materialization.md,
// "Cross-table seeds".
#pragma once

#include <string>
#include <vector>

#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/materialization_steps.hpp"
#include "seeds/validate/dependencies.hpp"

namespace seedproxy::seeds {

// The registry's table of key locks (created by registry migration 5): one row per (seed mapping,
// key hash) ever written, updated by every transaction that changes what that key's seed rows
// read. Its row locks order writers under READ COMMITTED; under REPEATABLE READ and SERIALIZABLE
// updating a row another transaction committed after the snapshot is a serialization failure.
inline constexpr const char* dependency_locks_table = R"sql("seedproxy"."dependency_locks")sql";

// The dependencies of a cross-table target, read again from the live catalog (the validator's
// analysis), and why the seed cannot be materialized: empty when it can. Never throws for a seed
// whose tables are gone (that is a refusal); throws QueryError when the database cannot be read.
struct CrossTableDependencies {
  SeedDependencies dependencies;
  std::string refusal;
};
[[nodiscard]] CrossTableDependencies read_cross_table_dependencies(
    ControlConnection& connection, const MaterializationTarget& target);

// PL/pgSQL statements for the seed table's BEFORE INSERT OR UPDATE trigger, run before the column
// is computed: lock the keys of NEW for every mapping when the row is inserted, when it changes a
// key, or always outside READ COMMITTED.
[[nodiscard]] std::string seed_row_key_locks(const MaterializationPlan& plan);

// Inside the caller's transaction: the function and the four triggers on one referenced table
// (one of plan.dependencies.tables). Throws MaterializationRefused when the table is gone or an
// object in the way is not seedproxy's.
void install_dependency_triggers(ControlConnection& connection, const MaterializationPlan& plan,
                                 const TableDependency& table);

// Inside the caller's transaction: every trigger and function made for the seed's dependencies,
// found in the catalog by name and mark (whatever the dependencies are now), and its key locks.
void remove_dependency_triggers(ControlConnection& connection, const MaterializationPlan& plan);

// The names the objects of one seed start with (functions), for tests and rollback.
[[nodiscard]] std::string dependency_function_stem(const MaterializationTarget& target);

}  // namespace seedproxy::seeds
