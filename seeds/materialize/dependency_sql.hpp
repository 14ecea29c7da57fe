// The SQL pieces that dependency_triggers.cpp builds its trigger functions from, shared with
// chain_triggers.cpp so that both sides of a key lock hash and order it the same way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/materialization_steps.hpp"
#include "seeds/validate/dependencies.hpp"

namespace seedproxy::seeds::dependency_sql {

// The four statement triggers of a dependency function: suffix of the trigger's name, event, and
// the transition tables it reads.
struct Trigger {
  const char* suffix;
  const char* event;
  const char* referencing;
};

inline constexpr Trigger kTriggers[] = {
    {"_i", "INSERT", " REFERENCING NEW TABLE AS \"seedproxy_new\""},
    {"_u", "UPDATE", " REFERENCING OLD TABLE AS \"seedproxy_old\" NEW TABLE AS \"seedproxy_new\""},
    {"_d", "DELETE", " REFERENCING OLD TABLE AS \"seedproxy_old\""},
    {"_t", "TRUNCATE", ""},
};

// Appends `item` to `out`, after `separator` unless `out` is empty.
void append(std::string& out, const char* separator, const std::string& item);

// Eight hex digits of a text's hash, for object names.
[[nodiscard]] std::string hex_hash(std::string_view text);

// "schema.function" as the analysis spells a hash function, quoted part by part.
[[nodiscard]] std::string quoted_function(const std::string& name);

// The first of the 256 lock spaces of one seed: every key lock of the seed (seed keys and a
// chain's join keys) lies in [seed_space, seed_space + 256), which a rollback forgets at once.
[[nodiscard]] std::uint32_t seed_space(const MaterializationTarget& target);

// The key lock space of the `mapping`-th mapping of `table` (what the seed's row trigger locks).
[[nodiscard]] std::string lock_space(const MaterializationTarget& target,
                                     const TableDependency& table, std::size_t mapping);

// One int4 from a mapping's key columns on one side; instantiated for this Column only.
template <typename Column>
std::string key_hash(const DependencyMapping& mapping, bool seed_side, Column column);
using ColumnSql = std::function<std::string(std::size_t)>;

// INSERT ... ON CONFLICT DO UPDATE of the key lock rows a query of ("space", "hash") yields, in
// (space, hash) order.
[[nodiscard]] std::string lock_keys_sql(const std::string& pairs);

// The dependency function of `table` (unquoted) and the table, quoted.
[[nodiscard]] std::string function_name(const MaterializationTarget& target,
                                        const TableDependency& table);
[[nodiscard]] std::string table_sql(const TableDependency& table);

// A dollar-quote tag that `body` does not contain.
[[nodiscard]] std::string dollar_tag(const std::string& body);

// Throws MaterializationRefused when the table is gone or `function` exists and is not ours.
void check_table(ControlConnection& connection, const MaterializationPlan& plan,
                 const TableDependency& table, const std::string& function);

}  // namespace seedproxy::seeds::dependency_sql
