// The DDL-seed queue: serving jobs, resolving the table, validating and inserting the seed.
#include "seeds/registry/ddl_seed_queue.hpp"

#include <libpq-fe.h>

#include <stdexcept>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "seeds/registry/registry.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/registry/seed_dependencies.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {
namespace {

DdlSeedVerdict refused(std::string sqlstate, std::string message, int position = 0) {
  return {DdlSeedVerdict::Kind::refused, std::move(sqlstate), std::move(message), position};
}

DdlSeedVerdict answered(DdlSeedVerdict::Kind kind) { return {kind, "", "", 0}; }

}  // namespace

DdlSeedQueue::DdlSeedQueue(ControlTarget target, std::string instance, SnapshotStore& store,
                           RegistryWatcher& watcher, std::mutex& changes, config::Validation bounds)
    : target_(std::move(target)),
      instance_(std::move(instance)),
      store_(store),
      watcher_(watcher),
      changes_(changes),
      bounds_(std::move(bounds)) {}

void DdlSeedQueue::submit(std::shared_ptr<DdlSeedJob> job) {
  {
    std::lock_guard lock(jobs_mutex_);
    jobs_.push_back(std::move(job));
  }
  watcher_.wake();
}

void DdlSeedQueue::serve() {
  std::vector<std::shared_ptr<DdlSeedJob>> jobs;
  {
    std::lock_guard lock(jobs_mutex_);
    jobs.swap(jobs_);
  }
  for (auto& job : jobs) {
    try {
      job->verdict = register_now(job->request);
    } catch (const std::exception& e) {
      job->verdict = refused(sqlstate::system_error,
                             std::string("seedproxy could not register the seed: ") + e.what());
    }
    job->done.complete();
  }
}

DdlSeedVerdict DdlSeedQueue::register_now(const DdlSeedRequest& request) {
  std::lock_guard serial(changes_);
  config::SeedSpec spec = request.seed;
  if (!watchable_database(spec.database))
    return refused(sqlstate::feature_not_supported,
                   "database \"" + spec.database + "\" cannot hold seeds");
  ControlConnection connection(target_, spec.database);
  if (auto skipped = resolve_table(connection, request, spec)) return *skipped;

  auto verdict = validate_seed(connection, spec, ValidationOptions{false, bounds_});
  if (const auto* refusal = std::get_if<Refusal>(&verdict)) {
    // A live column of that name: PostgreSQL skips ADD COLUMN IF NOT EXISTS with its own notice.
    if (request.if_not_exists && refusal->sqlstate == sqlstate::duplicate_column)
      return answered(DdlSeedVerdict::Kind::pass_through);
    return refused(refusal->sqlstate, refusal->message, refusal->position);
  }
  const auto& validated = std::get<ValidatedSeed>(verdict);
  for (const auto& warning : validated.warnings) log::warning("seeds", warning);
  const auto& d = validated.definition;
  const std::string label =
      "seed " + spec.database + "." + d.schema + "." + d.table + "." + d.attribute;
  const DdlSeedVerdict out = insert(connection, spec, validated, request.if_not_exists, label);
  if (out.kind == DdlSeedVerdict::Kind::registered) {
    log::info("seeds", label + " registered from a client's ALTER TABLE (ddl_seeds)");
    watcher_.reload(*store_.find_or_add(spec.database));
  }
  return out;
}

std::optional<DdlSeedVerdict> DdlSeedQueue::resolve_table(ControlConnection& connection,
                                                          const DdlSeedRequest& request,
                                                          config::SeedSpec& spec) {
  // The table as PostgreSQL would resolve it: named schema, or the first schema of the
  // session's search_path that has it.
  if (spec.entity.empty()) {
    auto found = connection.query(
        "DDL seed: resolving the table through search_path",
        R"sql(SELECT n.nspname FROM unnest($1::text[]) WITH ORDINALITY AS p(name, i)
JOIN pg_catalog.pg_namespace n ON n.nspname = p.name
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = $2
ORDER BY p.i LIMIT 1)sql",
        {text_array_literal(request.search_path), request.table});
    if (PQntuples(found.get()) == 0) {
      if (request.if_exists) return answered(DdlSeedVerdict::Kind::pass_through);
      return refused(sqlstate::undefined_table, "relation " + pg::quote_identifier(request.table) +
                                                    " does not exist (searched: " +
                                                    text_array_literal(request.search_path) + ")");
    }
    spec.entity = entity_part(text_at(found, 0, 0)) + "." + entity_part(request.table);
  } else if (request.if_exists) {
    std::string schema, table;
    if (pg::split_entity(spec.entity, schema, table)) {
      auto found =
          connection.query("DDL seed: looking up the table",
                           "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                           "ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                           {schema, table});
      if (PQntuples(found.get()) == 0) return answered(DdlSeedVerdict::Kind::pass_through);
    }
  }
  return std::nullopt;
}

DdlSeedVerdict DdlSeedQueue::insert(ControlConnection& connection, const config::SeedSpec& spec,
                                    const ValidatedSeed& validated, bool if_not_exists,
                                    const std::string& label) {
  const auto& d = validated.definition;
  lock_registry(connection);
  DdlSeedVerdict out;
  try {
    (void)connection.query("DDL seed: starting the registry change", "BEGIN");
    (void)migrate_registry(connection);
    const auto& m = spec.materialize;
    // ON CONFLICT: a seed of that name (registered by anyone, at any time) is left alone.
    // Its place: after the table's columns as they are now, as ADD COLUMN puts a column.
    auto inserted = connection.query(
        "DDL seed: registering the seed", std::string(R"sql(INSERT INTO "seedproxy"."seeds"
  ("schema_name", "table_name", "attribute_name", "type", "expression", "phase", "cross_table",
   "key_columns", "materialize_policy", "materialize_reads", "materialize_window_seconds",
   "declared_by", "declared_after_attnum")
VALUES ($1, $2, $3, $4, $5, 'virtual', $6::boolean, $7::text[], $8, $9::bigint, $10::bigint, $11,
        )sql") + declared_after_attnum_sql + R"sql()
ON CONFLICT DO NOTHING RETURNING 1)sql",
        {d.schema, d.table, d.attribute, d.type, d.expression,
         validated.cross_table ? "true" : "false", text_array_literal(validated.key_columns),
         std::string(config::to_string(m.policy)), std::to_string(m.reads),
         std::to_string(m.window_seconds), instance_ + " (DDL)"});
    if (PQntuples(inserted.get()) == 0) {
      (void)connection.query("DDL seed: leaving the registry unchanged", "ROLLBACK");
      out = if_not_exists ? answered(DdlSeedVerdict::Kind::already)
                          : refused(sqlstate::duplicate_column,
                                    "column " + pg::quote_identifier(d.attribute) +
                                        " of relation " + pg::quote_identifier(d.table) +
                                        " already exists: " + label + " is registered");
    } else {
      record_dependencies(connection, validated);
      (void)connection.query("DDL seed: announcing the registry change", "SELECT pg_notify($1, $2)",
                             {registry_channel, spec.database});
      (void)connection.query("DDL seed: committing the registry change", "COMMIT");
      out = answered(DdlSeedVerdict::Kind::registered);
    }
  } catch (...) {
    try {
      if (connection.in_transaction()) (void)connection.query("DDL seed: rolling back", "ROLLBACK");
      unlock_registry(connection);
    } catch (const std::exception& e) {
      log::warning("seeds", e.what());
    }
    throw;
  }
  unlock_registry(connection);
  return out;
}

}  // namespace seedproxy::seeds
