// Reading and writing seed definitions in a database's registry (seedproxy.seeds), and the
// declarations each proxy instance makes, from which conflicting configuration files are found.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {

// One row of seedproxy.seeds, with the reads counted in its materialization window.
struct RegistrySeed {
  std::string schema, table, attribute, type, expression;
  rewriter::Phase phase = rewriter::Phase::virtual_;
  bool cross_table = false;
  config::MaterializePolicy policy = config::MaterializePolicy::threshold;  // materialize.policy
  std::uint64_t reads = 0, window_seconds = 0;
  std::string declared_by;
  std::uint64_t reads_in_window = 0;
  rewriter::SeedPlace place;        // where clients see it among the table's columns
  std::string dependencies;         // cross-table: which seed rows a change to each table affects
  std::string materialize_refusal;  // why it cannot be materialized; empty when it can
  std::string dependency_error;     // DDL broke a dependency (set by the materializer)
};

// The place a seed declared now takes: after the table's highest attnum, dropped columns
// included, as ADD COLUMN would put it (NULL when the table is missing). An SQL expression over
// the parameters $1 (schema) and $2 (table); the declaration order comes from the registry's
// sequence, in the order seeds are inserted.
inline constexpr const char* declared_after_attnum_sql =
    R"sql((SELECT max(a.attnum) FROM pg_catalog.pg_attribute a
 JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = $1::text::name AND c.relname = $2::text::name AND a.attnum > 0))sql";

// A phase or materialize policy as the registry's columns spell them. The registry's CHECK
// constraints allow no other text; one this build does not know (a newer registry's) reads as
// virtual (clients read the attribute as before) and as manual (nothing is done unasked).
[[nodiscard]] rewriter::Phase registry_phase(std::string_view text) noexcept;
[[nodiscard]] config::MaterializePolicy registry_policy(std::string_view text) noexcept;

// Every seed of the registry in the connected database (which must have one, at `version`), by
// table and in declaration order.
[[nodiscard]] std::vector<RegistrySeed> read_registry(ControlConnection& connection, int version);

// A seed of the configuration that passed validation.
struct DeclaredSeed {
  config::SeedSpec spec;
  ValidatedSeed validated;
};

// The definition as compared between instances and against the registry: type, expression and
// materialization settings, in one line.
[[nodiscard]] std::string definition_text(const std::string& type, const std::string& expression,
                                          config::MaterializePolicy policy, std::uint64_t reads,
                                          std::uint64_t window_seconds);

// Inside an open transaction on `database` after migrate_registry(): checks `declared` (every seed
// `instance` declares for this database) against the other instances' declarations and the
// registry's phases and, only when nothing is refused, writes them: new seeds are inserted as
// virtual; a changed definition updates a virtual or rolled-back seed (which becomes virtual
// again), while re-declaring a rolled-back seed unchanged leaves it rolled back; materializing or
// materialized seeds are never changed. The instance's declarations of seeds it no longer declares
// are removed (the seeds themselves stay). Returns the refusals (then nothing was written) and sets
// `changed` when seedproxy.seeds was modified.
[[nodiscard]] std::vector<std::string> apply_declarations(ControlConnection& connection,
                                                          const std::string& database,
                                                          const std::string& instance,
                                                          const std::vector<DeclaredSeed>& declared,
                                                          bool& changed);

}  // namespace seedproxy::seeds
