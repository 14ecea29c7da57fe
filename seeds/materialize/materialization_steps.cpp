// Materialization steps as SQL: ADD COLUMN, the write trigger, key-ordered backfill and verify
// batches, rollback. Each runs in its own transaction with a short lock_timeout.
#include "seeds/materialize/materialization_steps.hpp"

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>
#include <utility>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "common/text.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/control/catalog_loader.hpp"
#include "seeds/control/object_mark.hpp"
#include "seeds/materialize/dependency_triggers.hpp"

namespace seedproxy::seeds {

namespace {

using Clock = std::chrono::steady_clock;

// Marks the objects seedproxy created, so a restarted engine (or a rollback) can tell them from
// the user's (seeds/control/object_mark.hpp).
constexpr const char* kMark = object_mark;

std::string hex_hash(std::string_view text) {
  const std::uint64_t hash = text::fnv1a(text);
  char out[9];
  std::snprintf(out, sizeof out, "%08x", static_cast<unsigned>(hash ^ (hash >> 32)));
  return out;
}

// At most 63 bytes, cut on a UTF-8 character boundary, with `suffix` kept whole.
std::string bounded_name(const std::string& stem, const std::string& suffix) {
  if (stem.size() + suffix.size() <= pg::max_identifier_bytes) return stem + suffix;
  return std::string(text::utf8_cut(stem, pg::max_identifier_bytes - suffix.size())) + suffix;
}

std::string ms_text(std::chrono::milliseconds value) {
  return std::to_string(std::max<std::int64_t>(1, value.count())) + "ms";
}

// One transaction with lock_timeout and statement_timeout set locally (the connection's own
// settings are untouched); rolled back unless committed.
class Transaction {
 public:
  // A batch transaction also commits without waiting for its WAL to reach disk, so its row locks
  // go as soon as the commit record is written. Nothing is lost: the watermark saved after it is
  // a synchronous commit later in the same WAL, so once the watermark is durable the batch is too,
  // and a batch lost in a crash is redone from the older watermark (batches are idempotent).
  enum class Kind : std::uint8_t { plain, batch };

  Transaction(ControlConnection& connection, const StepSettings& settings, Kind kind = Kind::plain)
      : connection_(connection) {
    (void)connection_.query("starting a materialization transaction", "BEGIN");
    open_ = true;
    try {
      const std::string set_timeouts =
          "SELECT pg_catalog.set_config('lock_timeout', $1, true), "
          "pg_catalog.set_config('statement_timeout', $2, true)";
      (void)connection_.query(
          "setting the materialization's lock and statement timeouts",
          kind == Kind::batch
              ? set_timeouts + ", pg_catalog.set_config('synchronous_commit', 'off', true)"
              : set_timeouts,
          {ms_text(settings.lock_timeout), ms_text(settings.statement_timeout)});
    } catch (...) {
      roll_back();  // no destructor runs for a constructor that throws
      throw;
    }
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() { roll_back(); }
  void commit() {
    open_ = false;
    (void)connection_.query("committing a materialization transaction", "COMMIT");
  }

 private:
  void roll_back() noexcept {
    if (!open_) return;
    open_ = false;
    try {
      (void)connection_.query("rolling back a materialization transaction", "ROLLBACK");
    } catch (...) {  // the connection is gone; nothing is left open on a dead connection
    }
  }

  ControlConnection& connection_;
  bool open_ = false;
};

// Sleeps `duration` in short slices, returning early once `stop` is set.
void sleep_unless_stopped(std::chrono::milliseconds duration, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + duration;
  while (!stop.load() && Clock::now() < until)
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(10), until - Clock::now()));
}

// Worth another attempt: the locks were not free, or the statement was cancelled (the lock
// watch's cancel of a batch can land on the connection's next statement, and a DDL statement that
// ran into statement_timeout waited on something that may be gone at the next attempt).
bool lock_conflict(const QueryError& error) {
  return error.sqlstate() == sqlstate::lock_not_available ||
         error.sqlstate() == sqlstate::deadlock_detected ||
         error.sqlstate() == sqlstate::query_canceled;
}

// Runs `attempt` (one transaction) until it gets its locks, backing off with jitter between
// attempts that hit lock_timeout; each attempt makes other sessions wait at most lock_timeout.
}  // namespace

std::chrono::milliseconds escalated_lock_timeout(const StepSettings& settings,
                                                 std::uint32_t failed) {
  auto timeout = settings.lock_timeout;
  const auto cap = std::max(settings.lock_timeout, settings.max_lock_timeout);
  for (std::uint32_t n = settings.escalate_after; settings.escalate_after > 0 && n <= failed;
       n += settings.escalate_after)
    timeout = std::min(timeout * 2, cap);
  return timeout;
}

namespace {

template <typename Attempt>
DdlOutcome with_lock_retries(const char* what, const MaterializationPlan& plan,
                             const StepSettings& settings, const std::atomic<bool>& stop,
                             Attempt attempt) {
  thread_local std::minstd_rand jitter{std::random_device{}()};
  DdlOutcome outcome;
  const auto started = Clock::now();
  auto delay = settings.retry_initial;
  StepSettings current = settings;
  for (;;) {
    if (stop.load()) return outcome;
    ++outcome.attempts;
    try {
      attempt(std::as_const(current));
      outcome.done = true;
      return outcome;
    } catch (const QueryError& error) {
      if (!lock_conflict(error)) throw;
      const auto next = escalated_lock_timeout(settings, outcome.attempts);
      if (next != current.lock_timeout)
        log::warning("materialize", "seed " + plan.name + ": " + what + ": " +
                                        std::to_string(outcome.attempts) +
                                        " attempts found no moment the table was free for " +
                                        ms_text(current.lock_timeout) +
                                        "; the next ones wait up to " + ms_text(next));
      current.lock_timeout = next;
      if (Clock::now() - started >= settings.give_up_after)
        throw std::runtime_error(
            "seed " + plan.name + ": " + what + " gave up after " +
            std::to_string(outcome.attempts) + " attempts: the table was never free of " +
            "conflicting locks for " + ms_text(current.lock_timeout) + " (" + error.what() + ")");
    }
    // 75%..125% of the delay, so several engines do not retry in lockstep.
    const auto spread = std::uniform_int_distribution<std::int64_t>(
        delay.count() * 3 / 4, std::max<std::int64_t>(1, delay.count() * 5 / 4))(jitter);
    sleep_unless_stopped(std::chrono::milliseconds(spread), stop);
    delay = std::min(delay * 2, settings.retry_max);
  }
}

// The table's oid as text, or empty when it no longer exists.
std::string table_oid(ControlConnection& connection, const MaterializationPlan& plan) {
  const auto result =
      connection.query("looking up the seed's table",
                       "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                       "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                       {plan.target.schema, plan.target.table});
  return PQntuples(result.get()) == 1 ? PQgetvalue(result.get(), 0, 0) : std::string();
}

struct ColumnState {
  bool exists = false;
  bool marked = false;
};

ColumnState column_state(ControlConnection& connection, const MaterializationPlan& plan) {
  const auto result = connection.query(
      "looking up the seed's column",
      "SELECT pg_catalog.col_description(a.attrelid, a.attnum) IS NOT DISTINCT FROM $3 "
      "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $4 AND a.attnum > 0 "
      "AND NOT a.attisdropped",
      {plan.target.schema, plan.target.table, kMark, plan.target.attribute});
  if (PQntuples(result.get()) != 1) return {};
  return {true, PQgetvalue(result.get(), 0, 0)[0] == 't'};
}

struct FunctionState {
  bool exists = false;
  bool marked = false;
};

FunctionState function_state(ControlConnection& connection, const MaterializationPlan& plan) {
  const auto result = connection.query(
      "looking up the seed's trigger function",
      "SELECT pg_catalog.obj_description(p.oid, 'pg_proc') IS NOT DISTINCT FROM $3 "
      "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
      "WHERE n.nspname = $1 AND p.proname = $2 AND p.pronargs = 0",
      {plan.target.schema, plan.function_name, kMark});
  if (PQntuples(result.get()) != 1) return {};
  return {true, PQgetvalue(result.get(), 0, 0)[0] == 't'};
}

// Whether the table has a trigger named like ours, and whether it calls our function.
struct TriggerState {
  bool exists = false;
  bool ours = false;
};

TriggerState trigger_state(ControlConnection& connection, const MaterializationPlan& plan,
                           const std::string& oid) {
  const auto result =
      connection.query("looking up the seed's trigger",
                       "SELECT n.nspname = $3 AND p.proname = $4 FROM pg_catalog.pg_trigger t "
                       "JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
                       "JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace "
                       "WHERE t.tgrelid = $1::pg_catalog.oid AND t.tgname = $2",
                       {oid, plan.trigger_name, plan.target.schema, plan.function_name});
  if (PQntuples(result.get()) != 1) return {};
  return {true, PQgetvalue(result.get(), 0, 0)[0] == 't'};
}

// A dollar-quote tag that does not occur in `body`.
std::string dollar_tag(const std::string& body) {
  for (int n = 0;; ++n) {
    const std::string tag = "$seedproxy" + (n ? std::to_string(n) : std::string()) + "$";
    if (body.find(tag) == std::string::npos) return tag;
  }
}

std::string key_list(const MaterializationPlan& plan, const char* direction = "") {
  std::string out;
  for (const auto& key : plan.key_sql) out += (out.empty() ? "" : ", ") + key + direction;
  return out;
}

// ("k1", "k2"), built by appending (GCC 12 misreports "(" + std::string under -Wrestrict).
std::string key_row(const MaterializationPlan& plan) {
  std::string out("(");
  out += key_list(plan);
  out += ')';
  return out;
}

// ($first::type1, $first+1::type2, ...)
std::string key_parameters(const MaterializationPlan& plan, int first) {
  std::string out("(");
  for (std::size_t i = 0; i < plan.key_types.size(); ++i)
    out +=
        (i ? ", $" : "$") + std::to_string(first + static_cast<int>(i)) + "::" + plan.key_types[i];
  return out + ")";
}

std::uint64_t to_count(const char* text) { return std::strtoull(text, nullptr, 10); }

// The last key of the next `limit` keys after `after` and how many there are (0: none left).
BatchResult next_range(ControlConnection& connection, const MaterializationPlan& plan,
                       const Watermark& after, std::uint64_t limit) {
  const std::string where =
      after.empty() ? std::string() : " WHERE " + key_row(plan) + " > " + key_parameters(plan, 2);
  std::vector<std::string> parameters{std::to_string(std::max<std::uint64_t>(1, limit))};
  parameters.insert(parameters.end(), after.begin(), after.end());
  const auto result = connection.query(
      "finding the next batch of keys",
      "WITH \"seedproxy_batch\" AS (SELECT " + key_list(plan) + " FROM " + plan.table_sql + where +
          " ORDER BY " + key_list(plan) + " LIMIT $1::pg_catalog.int8) SELECT " + key_list(plan) +
          ", pg_catalog.count(*) OVER () FROM \"seedproxy_batch\" ORDER BY " +
          key_list(plan, " DESC") + " LIMIT 1",
      parameters);
  BatchResult batch;
  if (PQntuples(result.get()) == 0) {
    batch.finished = true;
    return batch;
  }
  const int keys = static_cast<int>(plan.key_sql.size());
  for (int i = 0; i < keys; ++i) batch.upper.emplace_back(PQgetvalue(result.get(), 0, i));
  batch.rows = to_count(PQgetvalue(result.get(), 0, keys));
  return batch;
}

// "(keys) > (after) AND (keys) <= (upper)" with its parameters (from $1).
std::string range_condition(const MaterializationPlan& plan, const Watermark& after,
                            const Watermark& upper, std::vector<std::string>& parameters) {
  std::string condition;
  if (!after.empty()) {
    condition = key_row(plan) + " > " + key_parameters(plan, 1) + " AND ";
    parameters.insert(parameters.end(), after.begin(), after.end());
  }
  condition +=
      key_row(plan) + " <= " + key_parameters(plan, static_cast<int>(parameters.size()) + 1);
  parameters.insert(parameters.end(), upper.begin(), upper.end());
  return condition;
}

// Sets the column on the rows in (after, upper] that differ and that nobody else has locked right
// now (FOR UPDATE SKIP LOCKED): the batch never waits on an application's row lock. A skipped row
// is left as it is; the verify pass comes back to it. Returns the rows it changed.
std::uint64_t update_range(ControlConnection& connection, const MaterializationPlan& plan,
                           const Watermark& after, const Watermark& upper) {
  std::vector<std::string> parameters;
  const std::string condition = range_condition(plan, after, upper, parameters);
  const std::string differs =
      plan.alias_sql + "." + plan.column_sql + " IS DISTINCT FROM " + plan.value_sql;
  // The subquery's alias shadows the outer one, so the expression (bound to the alias) reads the
  // row being locked; the outer UPDATE then finds those rows locked by this very statement. The
  // range is repeated outside: without it the planner may join the locked keys to a scan of the
  // whole table once the batch is large.
  const auto result = connection.query(
      "backfilling the seed's column",
      "UPDATE " + plan.table_sql + " AS " + plan.alias_sql + " SET " + plan.column_sql + " = " +
          plan.value_sql + " WHERE " + condition + " AND " + key_row(plan) + " IN (SELECT " +
          key_list(plan) + " FROM " + plan.table_sql + " AS " + plan.alias_sql + " WHERE " +
          condition + " AND " + differs + " ORDER BY " + key_list(plan) + " FOR UPDATE OF " +
          plan.alias_sql + " SKIP LOCKED) AND " + differs,
      parameters);
  return to_count(PQcmdTuples(result.get()));
}

// Rows in (after, upper] whose column differs from the expression, read in the statement's own
// snapshot: no row locks taken, none waited for.
std::uint64_t count_differing(ControlConnection& connection, const MaterializationPlan& plan,
                              const Watermark& after, const Watermark& upper) {
  std::vector<std::string> parameters;
  const std::string condition = range_condition(plan, after, upper, parameters);
  const auto result =
      connection.query("verifying the seed's column",
                       "SELECT pg_catalog.count(*) FROM " + plan.table_sql + " AS " +
                           plan.alias_sql + " WHERE " + condition + " AND " + plan.alias_sql + "." +
                           plan.column_sql + " IS DISTINCT FROM " + plan.value_sql,
                       parameters);
  return to_count(PQgetvalue(result.get(), 0, 0));
}

}  // namespace

MaterializationTarget materialization_target(const ValidatedSeed& seed) {
  return {seed.definition.schema, seed.definition.table,      seed.definition.attribute,
          seed.definition.type,   seed.definition.expression, seed.key_columns,
          seed.cross_table};
}

MaterializationPlan MaterializationPlan::prepare(ControlConnection& connection,
                                                 const MaterializationTarget& target,
                                                 bool for_rollback) {
  MaterializationPlan plan;
  plan.target = target;
  plan.name = target.schema + "." + target.table + "." + target.attribute;
  const auto refuse = [&](const std::string& why) {
    return MaterializationRefused("seed " + plan.name + " cannot be materialized: " + why);
  };
  if (target.key_columns.empty())
    throw refuse("the table has no primary key or NOT NULL unique key to backfill in key order");

  const auto relation = connection.query(
      "looking up the seed's table",
      "SELECT c.oid, c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
      "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
      {target.schema, target.table});
  if (PQntuples(relation.get()) != 1) throw refuse("the table does not exist");
  const std::string kind = PQgetvalue(relation.get(), 0, 1);
  if (kind != "r" && kind != "p") throw refuse("it is not a table (relkind " + kind + ")");
  const auto columns = connection.query(
      "reading the seed table's columns",
      "SELECT a.attname, pg_catalog.format_type(a.atttypid, NULL), a.attgenerated <> '' "
      "FROM pg_catalog.pg_attribute a WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 "
      "AND NOT a.attisdropped ORDER BY a.attnum",
      {PQgetvalue(relation.get(), 0, 0)});
  struct Column {
    std::string name, type;
    bool generated = false;
  };
  std::vector<Column> physical;
  for (int row = 0; row < PQntuples(columns.get()); ++row)
    physical.push_back({PQgetvalue(columns.get(), row, 0), PQgetvalue(columns.get(), row, 1),
                        PQgetvalue(columns.get(), row, 2)[0] == 't'});
  const auto find = [&](const std::string& name) -> const Column* {
    for (const auto& column : physical)
      if (column.name == name) return &column;
    return nullptr;
  };

  plan.table_sql = pg::quote_identifier(target.schema) + "." + pg::quote_identifier(target.table);
  plan.alias_sql = pg::quote_identifier(target.table);
  plan.column_sql = pg::quote_identifier(target.attribute);
  for (const auto& key : target.key_columns) {
    const Column* column = find(key);
    if (!column) throw refuse("its key column \"" + key + "\" does not exist");
    plan.key_sql.push_back(pg::quote_identifier(key));
    plan.key_types.push_back(column->type);
  }

  // Row triggers fire in name order (bytewise); "zzzz_" puts ours after the usual names, so
  // triggers that adjust the inputs have run when ours computes the column.
  const std::string trigger = "zzzz_seedproxy_" + target.attribute;
  // Suffixes built by append: GCC 12 sees a false -Wrestrict overlap in "_" + std::string&&.
  std::string trigger_suffix = "_";
  trigger_suffix += hex_hash(target.attribute);
  plan.trigger_name =
      trigger.size() <= pg::max_identifier_bytes ? trigger : bounded_name(trigger, trigger_suffix);
  std::string function_suffix = "_";
  function_suffix += hex_hash(target.table + '\0' + target.attribute);
  plan.function_name =
      bounded_name("seedproxy_" + target.table + "_" + target.attribute, function_suffix);
  plan.function_sql =
      pg::quote_identifier(target.schema) + "." + pg::quote_identifier(plan.function_name);
  // The expression is compiled against the table as the seed saw it: without the column the
  // engine may already have added (a restart mid-materialization).
  const auto catalog = load_catalog(connection, 0);
  const rewriter::Relation* loaded = catalog.find(target.schema, target.table);
  if (!loaded) throw refuse("the table does not exist");
  rewriter::Relation entity = *loaded;
  std::erase(entity.columns, target.attribute);
  rewriter::ExpressionTemplate expression;
  if (const auto error = expression.compile(target.expression, entity, catalog); !error.empty()) {
    // DDL broke what it reads (a referenced column renamed, a table dropped): a rollback finds
    // every object by name and mark, and needs nothing the expression would give.
    if (for_rollback) return plan;
    throw refuse("its expression does not compile: " + error);
  }
  if (target.cross_table || expression.cross_table()) {
    plan.target.cross_table = true;
    auto read = read_cross_table_dependencies(connection, plan.target);
    plan.dependencies = std::move(read.dependencies);
    plan.dependency_refusal = std::move(read.refusal);
  }
  for (const auto& input : expression.columns())
    if (const Column* column = find(input); column && column->generated)
      throw refuse("its expression reads the generated column \"" + input +
                   "\", which a BEFORE trigger sees before it is computed");

  plan.value_sql = "((" + expression.bind(target.table) + "))::" + target.type;
  // In the PL/pgSQL trigger function the row is the variable "new".
  plan.trigger_value_sql = "((" + expression.bind("new") + "))::" + target.type;
  plan.input_columns = expression.columns();
  return plan;
}

bool column_added_by_seedproxy(ControlConnection& connection, const MaterializationPlan& plan) {
  return column_state(connection, plan).marked;
}

DdlOutcome add_column(ControlConnection& connection, const MaterializationPlan& plan,
                      const StepSettings& settings, const std::atomic<bool>& stop) {
  return with_lock_retries("adding the column", plan, settings, stop, [&](const StepSettings& now) {
    Transaction transaction(connection, now);
    const ColumnState state = column_state(connection, plan);
    if (state.exists && !state.marked)
      throw MaterializationRefused("seed " + plan.name + " cannot be materialized: the table " +
                                   "already has a column \"" + plan.target.attribute +
                                   "\" that seedproxy did not add; refusing to overwrite it");
    if (!state.exists) {
      // No default: a catalog-only change, however large the table.
      (void)connection.query("adding the seed's column", "ALTER TABLE " + plan.table_sql +
                                                             " ADD COLUMN " + plan.column_sql +
                                                             " " + plan.target.type);
      (void)connection.query(
          "marking the seed's column",
          "COMMENT ON COLUMN " + plan.table_sql + "." + plan.column_sql + " IS '" + kMark + "'");
    }
    transaction.commit();
  });
}

namespace {

// The first BEFORE row trigger on the table, other than the seed's own, that matches `which` (SQL
// over pg_trigger "t"; $2 is the seed's trigger name) and could change the expression's inputs:
// one seedproxy did not create, or another seed's when the expression reads a column seedproxy
// added (another seed's write trigger only sets that seed's column). Empty when there is none.
std::string input_changing_trigger(ControlConnection& connection, const MaterializationPlan& plan,
                                   const std::string& oid, const char* purpose,
                                   const std::string& which) {
  const auto found = connection.query(
      purpose,
      "SELECT t.tgname FROM pg_catalog.pg_trigger t WHERE t.tgrelid = $1::pg_catalog.oid "
      "AND NOT t.tgisinternal AND t.tgname <> $2 AND (t.tgtype & 3) = 3 AND (t.tgtype & 64) = 0 "
      "AND " +
          which +
          " AND (pg_catalog.obj_description(t.tgfoid, 'pg_proc') IS DISTINCT FROM $3 "
          "  OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.tgrelid "
          "    AND a.attnum > 0 AND NOT a.attisdropped AND a.attname = ANY ($4::text[]) "
          "    AND pg_catalog.col_description(a.attrelid, a.attnum) = $3)) "
          "ORDER BY t.tgname COLLATE \"C\" LIMIT 1",
      {oid, plan.trigger_name, kMark, text_array_literal(plan.input_columns)});
  return PQntuples(found.get()) > 0 ? std::string(PQgetvalue(found.get(), 0, 0)) : std::string();
}

// The events of a cross-table seed's write trigger. It fires on INSERT, and on an UPDATE that
// names in its SET list the seed's column (the dependency triggers, the backfill, a client writing
// it) or a column the expression reads from the row (its keys above all). Any other UPDATE keeps
// the column of the version it replaces, which is exact: every change to what the expression
// reads rewrote that version, or waits for this UPDATE's row lock and then rewrites the new one
// (docs/materialization.md, "Which UPDATEs recompute"). Another BEFORE UPDATE row trigger could
// change an input without naming it: one seedproxy did not create, or another seed's when the
// expression reads a column seedproxy added. Then every UPDATE fires, as without the list.
std::string cross_table_events(ControlConnection& connection, const MaterializationPlan& plan,
                               const std::string& oid) {
  if (!input_changing_trigger(connection, plan, oid,
                              "looking for BEFORE UPDATE triggers that could change the inputs",
                              "(t.tgtype & 16) <> 0")
           .empty())
    return " BEFORE INSERT OR UPDATE";
  std::string columns = plan.column_sql;
  for (const auto& input : plan.input_columns) columns += ", " + pg::quote_identifier(input);
  return " BEFORE INSERT OR UPDATE OF " + columns;
}

}  // namespace

DdlOutcome install_trigger(ControlConnection& connection, const MaterializationPlan& plan,
                           const StepSettings& settings, const std::atomic<bool>& stop) {
  if (plan.target.cross_table && !plan.dependency_refusal.empty())
    throw MaterializationRefused("seed " + plan.name +
                                 " cannot be materialized: " + plan.dependency_refusal);
  // A cross-table seed's referenced tables first, each in a transaction of its own: one table
  // lock at a time is what a busy table can grant within lock_timeout. Until the step ends
  // clients read the expression, so the order does not matter to them.
  DdlOutcome dependencies;
  for (const auto& table : plan.dependencies.tables) {
    const auto outcome = with_lock_retries("installing a dependency trigger", plan, settings, stop,
                                           [&](const StepSettings& now) {
                                             Transaction transaction(connection, now);
                                             install_dependency_triggers(connection, plan, table);
                                             transaction.commit();
                                           });
    dependencies.attempts += outcome.attempts;
    if (!outcome.done) return dependencies;
  }
  return with_lock_retries(
      "installing the write trigger", plan, settings, stop, [&](const StepSettings& now) {
        Transaction transaction(connection, now);
        const std::string oid = table_oid(connection, plan);
        if (oid.empty())
          throw MaterializationRefused("seed " + plan.name + ": the table no longer exists");
        const FunctionState function = function_state(connection, plan);
        if (function.exists && !function.marked)
          throw MaterializationRefused("seed " + plan.name +
                                       " cannot be materialized: a function " + plan.function_sql +
                                       "() exists that seedproxy did not create");
        const TriggerState trigger = trigger_state(connection, plan, oid);
        if (trigger.exists && !trigger.ours)
          throw MaterializationRefused("seed " + plan.name + " cannot be materialized: the table " +
                                       "has a trigger \"" + plan.trigger_name +
                                       "\" that seedproxy did not create");
        // A BEFORE row trigger firing after ours could change the inputs after we computed.
        const std::string later = input_changing_trigger(
            connection, plan, oid, "looking for BEFORE triggers that fire after the seed's",
            "t.tgname COLLATE \"C\" > $2 COLLATE \"C\" AND (t.tgtype & 20) <> 0");
        if (!later.empty())
          throw MaterializationRefused(
              "seed " + plan.name + " cannot be materialized: the BEFORE trigger \"" + later +
              "\" fires after \"" + plan.trigger_name +
              "\" and could change the expression's inputs after the column is computed");

        // A cross-table seed locks its row's keys first (dependency_triggers.hpp).
        const bool cross = plan.target.cross_table;
        const std::string body =
            "\n#variable_conflict use_column\n" +
            std::string(cross ? "DECLARE\n  \"seedproxy_lock_keys\" boolean;\n" : "") + "BEGIN\n" +
            (cross ? seed_row_key_locks(plan) : std::string()) + "  NEW." + plan.column_sql +
            " := " + plan.trigger_value_sql + ";\n  RETURN NEW;\nEND\n";
        const std::string tag = dollar_tag(body);
        // search_path FROM CURRENT: the expression's functions resolve as they did when the seed
        // was validated, whatever the writing session's search_path.
        (void)connection.query("creating the seed's trigger function",
                               "CREATE OR REPLACE FUNCTION " + plan.function_sql +
                                   "() RETURNS trigger LANGUAGE plpgsql " +
                                   (cross ? "SECURITY DEFINER " : "") +
                                   "SET search_path FROM CURRENT AS " + tag + body + tag);
        (void)connection.query(
            "marking the seed's trigger function",
            "COMMENT ON FUNCTION " + plan.function_sql + "() IS '" + kMark + "'");
        // WHEN: the function runs only for rows whose column would change. The condition is a
        // plain expression the executor evaluates without entering PL/pgSQL, bound to functions
        // when the trigger is created (so the writer's search_path does not matter either); it
        // spares the backfill's own UPDATEs, which already set the value, and writes that leave
        // the expression's inputs alone.
        // Not for a cross-table seed: WHEN reads the other tables with the writing statement's
        // snapshot, which may predate a transaction it waited for.
        const std::string when = cross ? std::string(" ")
                                       : " WHEN (\"new\"." + plan.column_sql +
                                             " IS DISTINCT FROM " + plan.trigger_value_sql + ") ";
        const std::string events =
            cross ? cross_table_events(connection, plan, oid) : " BEFORE INSERT OR UPDATE";
        (void)connection.query("creating the seed's write trigger",
                               "CREATE OR REPLACE TRIGGER " +
                                   pg::quote_identifier(plan.trigger_name) + events + " ON " +
                                   plan.table_sql + " FOR EACH ROW" + when + "EXECUTE FUNCTION " +
                                   plan.function_sql + "()");
        transaction.commit();
      });
}

std::uint64_t repair_range(ControlConnection& connection, const MaterializationPlan& plan,
                           const Watermark& after, const Watermark& upper,
                           const StepSettings& settings) {
  Transaction transaction(connection, settings, Transaction::Kind::batch);
  const std::uint64_t changed = update_range(connection, plan, after, upper);
  transaction.commit();
  return changed;
}

BatchResult backfill_batch(ControlConnection& connection, const MaterializationPlan& plan,
                           const Watermark& after, std::uint64_t limit,
                           const StepSettings& settings) {
  // The range is found before the writing transaction starts: its rows are locked only from the
  // UPDATE to the COMMIT right after it.
  BatchResult batch;
  {
    Transaction transaction(connection, settings);
    batch = next_range(connection, plan, after, limit);
    transaction.commit();
  }
  if (!batch.finished) batch.changed = repair_range(connection, plan, after, batch.upper, settings);
  return batch;
}

BatchResult verify_batch(ControlConnection& connection, const MaterializationPlan& plan,
                         const Watermark& after, std::uint64_t limit,
                         const StepSettings& settings) {
  BatchResult batch;
  {
    Transaction transaction(connection, settings);
    batch = next_range(connection, plan, after, limit);
    if (!batch.finished) batch.changed = count_differing(connection, plan, after, batch.upper);
    transaction.commit();
  }
  if (batch.finished || batch.changed == 0) return batch;
  // Repair only what differs, skipping rows locked right now, then look again: what still differs
  // is held by another transaction (or the expression is not deterministic).
  batch.repaired = repair_range(connection, plan, after, batch.upper, settings);
  Transaction transaction(connection, settings);
  batch.remaining = count_differing(connection, plan, after, batch.upper);
  transaction.commit();
  return batch;
}

std::uint64_t estimate_rows(ControlConnection& connection, const MaterializationPlan& plan) {
  const auto result =
      connection.query("estimating the seed table's rows",
                       "SELECT c.reltuples::pg_catalog.int8 FROM pg_catalog.pg_class c "
                       "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = $1 AND c.relname = $2 AND c.reltuples >= 0",
                       {plan.target.schema, plan.target.table});
  if (PQntuples(result.get()) == 1) return to_count(PQgetvalue(result.get(), 0, 0));
  // Never analyzed (or partitioned): count once.
  const auto counted = connection.query("counting the seed table's rows",
                                        "SELECT pg_catalog.count(*) FROM " + plan.table_sql);
  return to_count(PQgetvalue(counted.get(), 0, 0));
}

DdlOutcome remove_materialization(ControlConnection& connection, const MaterializationPlan& plan,
                                  bool column_added, const StepSettings& settings,
                                  const std::atomic<bool>& stop) {
  return with_lock_retries("rolling back", plan, settings, stop, [&](const StepSettings& now) {
    Transaction transaction(connection, now);
    if (const std::string oid = table_oid(connection, plan); !oid.empty()) {
      if (trigger_state(connection, plan, oid).ours)
        (void)connection.query("dropping the seed's write trigger",
                               "DROP TRIGGER IF EXISTS " + pg::quote_identifier(plan.trigger_name) +
                                   " ON " + plan.table_sql);
      const ColumnState column = column_state(connection, plan);
      if (column.exists && (column.marked || column_added))
        (void)connection.query(
            "dropping the seed's column",
            "ALTER TABLE " + plan.table_sql + " DROP COLUMN IF EXISTS " + plan.column_sql);
    }
    if (function_state(connection, plan).marked)
      (void)connection.query("dropping the seed's trigger function",
                             "DROP FUNCTION IF EXISTS " + plan.function_sql + "()");
    if (plan.target.cross_table) remove_dependency_triggers(connection, plan);
    transaction.commit();
  });
}

bool is_busy(const QueryError& error) noexcept {
  const auto& state = error.sqlstate();
  // lock_not_available, query_canceled (statement_timeout), deadlock, serialization failure
  return state == sqlstate::lock_not_available || state == sqlstate::query_canceled ||
         state == sqlstate::deadlock_detected || state == sqlstate::serialization_failure;
}

}  // namespace seedproxy::seeds
