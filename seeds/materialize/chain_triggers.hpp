// What keeps a cross-table seed exact when it reads a table through a chain of lookups (region
// through customer): the changed table's triggers lock the middle table's join keys before the
// seed keys they lead to, and the middle table's writers lock the same join keys, so the middle
// rows a recomputation follows cannot change under it. The argument: docs/materialization.md,
// "Chains of lookups".
#pragma once

#include <string>

#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/materialization_steps.hpp"
#include "seeds/validate/dependencies.hpp"

namespace seedproxy::seeds {

// Whether `table` has a mapping without a middle table (dependency_triggers.cpp keeps those).
[[nodiscard]] bool has_direct_mapping(const TableDependency& table);

// Inside the caller's transaction: when `table` ends a chain or sits in the middle of one, its
// chain function and four triggers, which fire before its other dependency triggers. Throws
// MaterializationRefused when the table is gone or an object in the way is not seedproxy's.
void install_chain_triggers(ControlConnection& connection, const MaterializationPlan& plan,
                            const TableDependency& table);

}  // namespace seedproxy::seeds
