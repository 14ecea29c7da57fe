// What the registry keeps about a cross-table seed's dependencies (seedproxy.seeds "dependencies",
// "materialize_refusal", "dependency_error"): written when a seed is registered, and by the
// materializer when DDL breaks or mends a dependency.
#pragma once

#include <string>

#include "seeds/control/control_connection.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {

// Inside the transaction that registered `seed`: records what it depends on and whether it can be
// materialized (both NULL for a row-local seed). Writes only when they changed.
void record_dependencies(ControlConnection& connection, const ValidatedSeed& seed);

// Sets (or, with an empty `error`, clears) the broken dependency of a seed and, when that changed
// anything, announces it to every proxy. Returns whether it changed.
bool write_dependency_error(ControlConnection& connection, const std::string& database,
                            const std::string& schema, const std::string& table,
                            const std::string& attribute, const std::string& error);

// The registry's column, read from the row `alias` of seedproxy.seeds even where the registry is
// older than the column (then NULL): to_jsonb(alias) ->> 'column'.
[[nodiscard]] std::string optional_seed_column(const char* alias, const char* column);

}  // namespace seedproxy::seeds
