// Noticing DDL that broke what a cross-table seed reads (a referenced table or column dropped or
// renamed, a type or function changed under it), whether it came through a proxy or straight to
// the database: the seed's expression is prepared against the live catalog (which runs nothing),
// and a failure the catalog explains becomes seedproxy.seeds."dependency_error", a sentence with
// what broke and what to do. docs/materialization.md, "When DDL breaks a dependency".
#pragma once

#include <string>
#include <vector>

#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/materialization_registry.hpp"

namespace seedproxy::seeds {

// The sentence SHOW SEEDS shows for `seed` of `database` when its expression no longer resolves
// against the catalog; empty when it does (or for a row-local or rolled back seed). Throws
// QueryError when the database cannot be asked.
[[nodiscard]] std::string broken_dependency(ControlConnection& connection,
                                            const std::string& database, const EngineSeed& seed);

// For every seed of `seeds`: records (or clears) its broken dependency in the registry where
// that changed, announcing it to every proxy, and in `seeds`. Needs registry version 5.
void record_broken_dependencies(ControlConnection& connection, const std::string& database,
                                std::vector<EngineSeed>& seeds);

}  // namespace seedproxy::seeds
