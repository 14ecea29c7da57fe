// The Schema Seed Generator's gate: checks one seed against the live database and either accepts
// it (with what the registry needs to know) or refuses it with a sentence naming the rule.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/validate/dependencies.hpp"

namespace seedproxy::seeds {

struct Refusal {
  std::string seed;      // "database.schema.table.attribute" as declared
  std::string rule;      // short rule id: "entity", "key", "attribute", "expression",
                         // "deterministic", "type", "column", "aggregate", ...
  std::string message;   // full sentence naming seed, rule and cause
  int position = 0;      // 1-based character position inside the expression, 0 when none
  std::string sqlstate;  // what a client's ALTER TABLE gets for it (common/sqlstate.hpp): close
                         // to what PostgreSQL itself would answer for the same column
};

struct ValidatedSeed {
  rewriter::SeedDefinition definition;   // schema/table folded as PostgreSQL does, phase virtual
  bool cross_table = false;              // the expression reads other tables (scalar subqueries)
  std::vector<std::string> key_columns;  // primary key, or a unique key whose columns are all
                                         // NOT NULL; empty if none
  // For a cross-table seed: the tables it reads and which seed rows a change to each can affect,
  // or why that cannot be bounded (dependencies.refusal: it then stays virtual).
  SeedDependencies dependencies;
  std::vector<std::string> warnings;  // accepted, but the operator should know (a sentence each)
};

struct ValidationOptions {
  // The proxy itself already added the attribute's column (a materializing or materialized seed
  // being re-applied): a live column of that name is expected, not a conflict.
  bool column_added_by_proxy = false;
  // The expression is evaluated for a few rows of its table (one row of NULLs when it is empty)
  // under this statement_timeout: one that cannot finish is refused (rule "cost"), since it
  // would run on every read. Cheap for any reasonable seed; docs/seeds.md.
  // And the planner's estimate for `SELECT expr FROM t` is compared with `SELECT * FROM t`'s
  // (rule "cost" past bounds.max_cost_ratio, or a warning with cost_action warn).
  config::Validation bounds;
};

// Checks `seed` against the live database `connection` is connected to (seed.database). Never
// changes anything (anything created for checking is inside a transaction that is rolled back, or
// a savepoint when the caller has a transaction open). Throws std::runtime_error only when the
// database itself cannot be queried; a bad seed is a Refusal. The rules: docs/seeds.md.
[[nodiscard]] std::variant<ValidatedSeed, Refusal> validate_seed(
    ControlConnection& connection, const config::SeedSpec& seed,
    const ValidationOptions& options = {});

// The seed's name as refusals spell it: "database.entity.attribute" as declared.
[[nodiscard]] std::string seed_name(const config::SeedSpec& seed);

}  // namespace seedproxy::seeds
