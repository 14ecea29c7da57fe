// The Gradual Materialization Engine's steps for one row-local seed, each an idempotent function
// over a control connection: add the column, install the write trigger, backfill and verify one
// key-ordered batch, roll back. The state machine that sequences them is materializer.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "seeds/control/control_connection.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {

// What the engine needs to know about a seed (from the registry or a ValidatedSeed).
struct MaterializationTarget {
  std::string schema, table, attribute;
  std::string type;                      // pasted as validated, e.g. "numeric(12,2)"
  std::string expression;                // pasted as validated
  std::vector<std::string> key_columns;  // primary key or NOT NULL unique key, in key order
  bool cross_table = false;
};

[[nodiscard]] MaterializationTarget materialization_target(const ValidatedSeed& seed);

// The seed cannot be materialized (cross-table expression, no key, ...) or a database object
// in the way was not made by seedproxy. Retrying does not help; the seed stays virtual.
class MaterializationRefused : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct StepSettings {
  // Longest a DDL statement (or a batch's row lock) waits for a lock; other sessions queue
  // behind a waiting ACCESS EXCLUSIVE request, so this bounds the stall they can see.
  std::chrono::milliseconds lock_timeout{50};
  // Back-off between DDL attempts that hit lock_timeout: initial, doubled, capped.
  std::chrono::milliseconds retry_initial{50};
  std::chrono::milliseconds retry_max{2000};
  // Writers that always hold the table leave no lock_timeout-long gap: after every
  // `escalate_after` attempts that found none, a DDL step doubles the lock_timeout of its next
  // attempts, up to `max_lock_timeout` (a bounded stall, logged, rather than never finishing).
  std::uint32_t escalate_after = 5;
  std::chrono::milliseconds max_lock_timeout{400};
  // A DDL step gives up (throws) after trying this long.
  std::chrono::milliseconds give_up_after{std::chrono::minutes(10)};
  // Upper bound of one backfill or verify statement, so a stop request is honoured promptly.
  std::chrono::milliseconds statement_timeout{1000};
};

// The lock_timeout of a DDL step's next attempt after `failed` attempts that met a conflict:
// doubled after every settings.escalate_after of them, up to max_lock_timeout.
[[nodiscard]] std::chrono::milliseconds escalated_lock_timeout(const StepSettings& settings,
                                                               std::uint32_t failed);

// A backfill watermark: the last key done, one text value per key column; empty = before the
// first row.
using Watermark = std::vector<std::string>;

// The SQL for one target, prepared once from the live catalog: every identifier quoted, the
// expression bound to the table's columns, key column types looked up. Plain data so the steps
// below (and their tests) can read it.
struct MaterializationPlan {
  // Throws MaterializationRefused for a seed the engine cannot materialize, QueryError when the
  // catalog cannot be read. `for_rollback`: an expression that no longer compiles (DDL broke a
  // dependency) still gives a plan with the objects' names, which is all a rollback needs.
  [[nodiscard]] static MaterializationPlan prepare(ControlConnection& connection,
                                                   const MaterializationTarget& target,
                                                   bool for_rollback = false);

  MaterializationTarget target;
  std::string name;                        // "schema.table.attribute", as messages name the seed
  std::string trigger_name;                // unquoted, <= 63 bytes
  std::string function_name;               // unquoted, <= 63 bytes, in the table's schema
  std::string table_sql;                   // "schema"."table"
  std::string alias_sql;                   // "table": the alias the expression is bound to
  std::string column_sql;                  // "attribute"
  std::string value_sql;                   // ((expression over "table"))::type
  std::string trigger_value_sql;           // ((expression over "new"))::type
  std::vector<std::string> input_columns;  // the table's columns the expression reads
  std::string function_sql;                // "schema"."function"
  std::vector<std::string> key_sql;        // "k1", ... in key order
  std::vector<std::string> key_types;      // format_type without typmod, for parameter casts
  // A cross-table seed: what it reads (dependency_triggers.hpp), and why it cannot be
  // materialized (empty when it can; a rollback needs neither).
  SeedDependencies dependencies;
  std::string dependency_refusal;
};

// What a DDL step did.
struct DdlOutcome {
  bool done = false;           // false: stopped before it could take its lock
  std::uint32_t attempts = 0;  // 1 + lock timeouts
};

// Step 1: ADD COLUMN (metadata only) marked as seedproxy's by a column comment in the same
// transaction, so a crash between the commit and the state save cannot lose who added it.
// Idempotent: a column already marked is accepted; an unmarked column of that name is refused.
[[nodiscard]] DdlOutcome add_column(ControlConnection& connection, const MaterializationPlan& plan,
                                    const StepSettings& settings, const std::atomic<bool>& stop);

// Whether the column exists and carries seedproxy's mark.
[[nodiscard]] bool column_added_by_seedproxy(ControlConnection& connection,
                                             const MaterializationPlan& plan);

// Step 2: the BEFORE INSERT OR UPDATE row trigger and its function, which sets the column from
// the expression over NEW. Idempotent (CREATE OR REPLACE, one transaction).
[[nodiscard]] DdlOutcome install_trigger(ControlConnection& connection,
                                         const MaterializationPlan& plan,
                                         const StepSettings& settings,
                                         const std::atomic<bool>& stop);

struct BatchResult {
  bool finished = false;        // no key after the watermark: the whole table is covered
  Watermark upper;              // the new watermark (last key of this batch)
  std::uint64_t rows = 0;       // keys in the batch
  std::uint64_t changed = 0;    // backfill: rows updated; verify: rows that differed
  std::uint64_t repaired = 0;   // verify: rows the repair updated
  std::uint64_t remaining = 0;  // verify: rows that still differed after the repair
};

// Sets the column on the rows in (after, upper] that differ from the expression, in one short
// transaction: FOR UPDATE SKIP LOCKED, so it never waits on a row another transaction holds (that
// row is left for verify), and the rows it takes are held only from its UPDATE to its COMMIT
// (synchronous_commit off). Returns the rows it changed. Idempotent.
[[nodiscard]] std::uint64_t repair_range(ControlConnection& connection,
                                         const MaterializationPlan& plan, const Watermark& after,
                                         const Watermark& upper, const StepSettings& settings);

// Step 4, one batch: the next `limit` keys after `after` (read without locks), then repair_range
// over them. Idempotent. Throws QueryError; is_busy() tells a lock wait or timeout from a real
// error.
[[nodiscard]] BatchResult backfill_batch(ControlConnection& connection,
                                         const MaterializationPlan& plan, const Watermark& after,
                                         std::uint64_t limit, const StepSettings& settings);

// Step 5, one batch: counts, in a read-only snapshot (no row locks), the rows of the next `limit`
// keys whose column differs from the expression; when some do, repair_range over them and counts
// again (`remaining`: rows another transaction held, or an expression that is not deterministic).
[[nodiscard]] BatchResult verify_batch(ControlConnection& connection,
                                       const MaterializationPlan& plan, const Watermark& after,
                                       std::uint64_t limit, const StepSettings& settings);

// Rows in the table: pg_class.reltuples, or count(*) when the table was never analyzed.
[[nodiscard]] std::uint64_t estimate_rows(ControlConnection& connection,
                                          const MaterializationPlan& plan);

// Rollback: drops the trigger, its function, and the column when seedproxy added it
// (`column_added` from the persisted state, or the column's mark). Idempotent.
[[nodiscard]] DdlOutcome remove_materialization(ControlConnection& connection,
                                                const MaterializationPlan& plan, bool column_added,
                                                const StepSettings& settings,
                                                const std::atomic<bool>& stop);

// Lock timeout, statement timeout, deadlock, serialization failure: try again later.
[[nodiscard]] bool is_busy(const QueryError& error) noexcept;

}  // namespace seedproxy::seeds
