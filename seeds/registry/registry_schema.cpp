// The registry's migrations, in order; a later version appends a step, never edits one.
#include "seeds/registry/registry_schema.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace seedproxy::seeds {
namespace {

struct Migration {
  int version;
  const char* purpose;
  std::vector<const char*> statements;
};

// The registry's change counter and the proxies' heartbeat rows, so phase changes wait for every
// live proxy's acknowledgement (docs/registry.md, "Heartbeats, leases and versions").
// Its number is fleet_schema_version (registry_schema.hpp), the one place it is written.
Migration fleet_migration() {
  return {fleet_schema_version,
          "heartbeats of the proxies and the version of the registry each one serves",
          {R"sql(CREATE TABLE "seedproxy"."registry_state" (
  "singleton" boolean PRIMARY KEY DEFAULT true CHECK ("singleton"),
  "version" bigint NOT NULL DEFAULT 1))sql",
           R"sql(INSERT INTO "seedproxy"."registry_state" DEFAULT VALUES)sql",
           R"sql(COMMENT ON TABLE "seedproxy"."registry_state" IS
  'seedproxy: the registry''s version, raised by every statement that changes seedproxy.seeds; proxies acknowledge the version they serve')sql",
           R"sql(CREATE FUNCTION "seedproxy"."count_registry_change"() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  UPDATE "seedproxy"."registry_state" SET "version" = "version" + 1;
  RETURN NULL;
END $$)sql",
           R"sql(CREATE TRIGGER "count_registry_change"
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON "seedproxy"."seeds"
  FOR EACH STATEMENT EXECUTE FUNCTION "seedproxy"."count_registry_change"())sql",
           R"sql(CREATE TABLE "seedproxy"."proxies" (
  "instance" text PRIMARY KEY,
  "address" text NOT NULL,
  "served_version" bigint NOT NULL,
  "heartbeat_at" timestamptz NOT NULL DEFAULT now(),
  "lease_until" timestamptz NOT NULL,
  "joined_at" timestamptz NOT NULL DEFAULT now()))sql",
           R"sql(COMMENT ON TABLE "seedproxy"."proxies" IS
  'seedproxy: one heartbeat row per proxy following this database; live while lease_until is ahead; served_version is the registry version its sessions are served from')sql"}};
}

// Version 5: the dependencies of cross-table seeds, why one cannot be materialized, broken
// dependencies, and the key locks that order the writers of a materialized cross-table seed.
Migration dependencies_migration() {
  return {5,
          "what cross-table seeds depend on",
          {R"sql(ALTER TABLE "seedproxy"."seeds"
  ADD COLUMN "dependencies" text,
  ADD COLUMN "materialize_refusal" text,
  ADD COLUMN "dependency_error" text)sql",
           R"sql(COMMENT ON COLUMN "seedproxy"."seeds"."dependencies" IS
  'seedproxy: for each table a cross-table seed reads, the equalities that say which seed rows a change to it affects')sql",
           R"sql(COMMENT ON COLUMN "seedproxy"."seeds"."materialize_refusal" IS
  'seedproxy: why the seed cannot be materialized (it stays virtual); NULL when it can')sql",
           R"sql(COMMENT ON COLUMN "seedproxy"."seeds"."dependency_error" IS
  'seedproxy: DDL that broke a dependency of a materializing or materialized seed, and what to do; set and cleared by the materializer')sql",
           R"sql(CREATE TABLE "seedproxy"."dependency_locks" (
  "space" integer NOT NULL,
  "hash" integer NOT NULL,
  "writes" bigint NOT NULL DEFAULT 0,
  PRIMARY KEY ("space", "hash")))sql",
           R"sql(COMMENT ON TABLE "seedproxy"."dependency_locks" IS
  'seedproxy: one row per key of a materialized cross-table seed that a write touched; its row lock orders the writers of that key (docs/materialization.md)')sql"}};
}

// Version 1: seeds and their phases, who declared what (conflicts), read counters per minute and
// materialization progress (both filled in by the materialization engine). Version 2: requests
// from admin consoles (MATERIALIZE, ROLLBACK, PAUSE) and the rest of the engine's state.
// Version 3: fleet_migration(). Version 4 (seed_places_migration): each seed's place among its
// table's columns. Version 5: the dependencies of cross-table seeds, why one cannot be
// materialized, and broken dependencies.
Migration seed_places_migration();

const std::vector<Migration>& migrations() {
  static const std::vector<Migration> list{
      {1,
       "create the seed registry",
       {R"sql(CREATE TABLE "seedproxy"."seeds" (
  "schema_name" text NOT NULL,
  "table_name" text NOT NULL,
  "attribute_name" text NOT NULL,
  "type" text NOT NULL,
  "expression" text NOT NULL,
  "phase" text NOT NULL DEFAULT 'virtual'
    CHECK ("phase" IN ('virtual', 'materializing', 'materialized', 'rolled_back')),
  "cross_table" boolean NOT NULL DEFAULT false,
  "key_columns" text[] NOT NULL DEFAULT '{}',
  "materialize_policy" text NOT NULL DEFAULT 'threshold'
    CHECK ("materialize_policy" IN ('threshold', 'never', 'manual')),
  "materialize_reads" bigint NOT NULL DEFAULT 100 CHECK ("materialize_reads" >= 0),
  "materialize_window_seconds" bigint NOT NULL DEFAULT 86400
    CHECK ("materialize_window_seconds" > 0),
  "declared_by" text NOT NULL,
  "created_at" timestamptz NOT NULL DEFAULT now(),
  "updated_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("schema_name", "table_name", "attribute_name")))sql",
        R"sql(COMMENT ON TABLE "seedproxy"."seeds" IS
  'seedproxy: one row per seed (virtual attribute) of this database; phase decides what every proxy does with it')sql",
        R"sql(CREATE TABLE "seedproxy"."declarations" (
  "instance" text NOT NULL,
  "schema_name" text NOT NULL,
  "table_name" text NOT NULL,
  "attribute_name" text NOT NULL,
  "definition_hash" text NOT NULL,
  "definition" text NOT NULL,
  "last_applied" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY ("instance", "schema_name", "table_name", "attribute_name")))sql",
        R"sql(COMMENT ON TABLE "seedproxy"."declarations" IS
  'seedproxy: the seeds each proxy instance declares in its configuration file, to detect conflicting files')sql",
        R"sql(CREATE TABLE "seedproxy"."read_counts" (
  "schema_name" text NOT NULL,
  "table_name" text NOT NULL,
  "attribute_name" text NOT NULL,
  "minute" timestamptz NOT NULL,
  "instance" text NOT NULL,
  "reads" bigint NOT NULL DEFAULT 0 CHECK ("reads" >= 0),
  PRIMARY KEY ("schema_name", "table_name", "attribute_name", "minute", "instance"),
  FOREIGN KEY ("schema_name", "table_name", "attribute_name")
    REFERENCES "seedproxy"."seeds" ON UPDATE CASCADE ON DELETE CASCADE))sql",
        R"sql(COMMENT ON TABLE "seedproxy"."read_counts" IS
  'seedproxy: reads of each seed per minute and per proxy instance; the window sums over instances')sql",
        R"sql(CREATE TABLE "seedproxy"."materializations" (
  "schema_name" text NOT NULL,
  "table_name" text NOT NULL,
  "attribute_name" text NOT NULL,
  "step" text NOT NULL,
  "paused" boolean NOT NULL DEFAULT false,
  "column_added" boolean NOT NULL DEFAULT false,
  "watermark" text[],
  "rows_done" bigint NOT NULL DEFAULT 0,
  "rows_total" bigint,
  "batch_size" integer,
  "owner" text,
  "error" text,
  "started_at" timestamptz NOT NULL DEFAULT now(),
  "updated_at" timestamptz NOT NULL DEFAULT now(),
  "finished_at" timestamptz,
  PRIMARY KEY ("schema_name", "table_name", "attribute_name"),
  FOREIGN KEY ("schema_name", "table_name", "attribute_name")
    REFERENCES "seedproxy"."seeds" ON UPDATE CASCADE ON DELETE CASCADE))sql",
        R"sql(COMMENT ON TABLE "seedproxy"."materializations" IS
  'seedproxy: progress of the materialization (or rollback) of a seed; watermark is the last key backfilled')sql"}},
      {2,
       "operator requests and the engine's full resumable state",
       {R"sql(ALTER TABLE "seedproxy"."seeds"
  ADD COLUMN "requested" text CHECK ("requested" IN ('materialize', 'rollback')),
  ADD COLUMN "paused" boolean NOT NULL DEFAULT false)sql",
        R"sql(COMMENT ON COLUMN "seedproxy"."seeds"."requested" IS
  'seedproxy: MATERIALIZE or ROLLBACK asked for on an admin console, until the materializing proxy takes it up')sql",
        R"sql(ALTER TABLE "seedproxy"."materializations"
  ADD COLUMN "rows_updated" bigint NOT NULL DEFAULT 0,
  ADD COLUMN "rows_repaired" bigint NOT NULL DEFAULT 0,
  ADD COLUMN "verify_pass" integer NOT NULL DEFAULT 0,
  ADD COLUMN "mismatches_in_pass" bigint NOT NULL DEFAULT 0,
  ADD COLUMN "rows_per_second" double precision)sql"}},
      fleet_migration(),
      seed_places_migration(),
      dependencies_migration(),
  };
  return list;
}

// Version 4 (seed_places_version): where clients see each seed among its table's columns, as ADD
// COLUMN would have put it when it was declared; the places of seeds declared before are those
// clients see today.
Migration seed_places_migration() {
  return {seed_places_version,
          "each seed's place among its table's columns",
          {R"sql(CREATE SEQUENCE "seedproxy"."declaration_order")sql",
           R"sql(ALTER TABLE "seedproxy"."seeds"
  ADD COLUMN "declared_after_attnum" integer,
  ADD COLUMN "declaration_order" bigint)sql",
           // Seeds declared before places were kept stay where clients see them today: one with
           // its own column (materializing, materialized) at that column's attnum, any other after
           // the table's last column (dropped ones included), those of one place in name order.
           // A seed whose table is missing keeps no place (NULL): placed as before once it exists.
           R"sql(UPDATE "seedproxy"."seeds" s
SET "declared_after_attnum" = p."after", "declaration_order" = p."position"
FROM (SELECT r."schema_name", r."table_name", r."attribute_name",
             coalesce(own."attnum" - 1, last."attnum") AS "after",
             row_number() OVER (ORDER BY r."schema_name", r."table_name", own."attnum" NULLS LAST,
                                r."attribute_name") AS "position"
      FROM "seedproxy"."seeds" r
      LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = r."schema_name"
      LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = r."table_name"
      LEFT JOIN LATERAL (SELECT max(a.attnum) AS "attnum" FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = c.oid AND a.attnum > 0) last ON true
      LEFT JOIN pg_catalog.pg_attribute own
        ON own.attrelid = c.oid AND own.attname = r."attribute_name" AND own.attnum > 0
           AND NOT own.attisdropped AND r."phase" IN ('materializing', 'materialized')) p
WHERE s."schema_name" = p."schema_name" AND s."table_name" = p."table_name"
  AND s."attribute_name" = p."attribute_name")sql",
           R"sql(SELECT setval('"seedproxy"."declaration_order"',
              coalesce(max("declaration_order"), 0) + 1, false)
FROM "seedproxy"."seeds")sql",
           R"sql(ALTER TABLE "seedproxy"."seeds"
  ALTER COLUMN "declaration_order" SET DEFAULT nextval('"seedproxy"."declaration_order"'),
  ALTER COLUMN "declaration_order" SET NOT NULL)sql",
           R"sql(ALTER SEQUENCE "seedproxy"."declaration_order"
  OWNED BY "seedproxy"."seeds"."declaration_order")sql",
           R"sql(COMMENT ON COLUMN "seedproxy"."seeds"."declared_after_attnum" IS
  'seedproxy: the table''s highest attnum (dropped columns included) when the seed was declared; clients see the seed right after it, as ADD COLUMN would have put it')sql",
           R"sql(COMMENT ON COLUMN "seedproxy"."seeds"."declaration_order" IS
  'seedproxy: order of declaration (the configuration file''s order within one application); seeds declared at one place are shown in this order')sql"}};
}

}  // namespace

bool watchable_database(std::string_view database) noexcept {
  return !database.empty() && database != "seedproxy" && database != "template0" &&
         database != "template1";
}

int registry_version(ControlConnection& connection) {
  auto present =
      connection.query("looking for the seed registry",
                       "SELECT to_regclass('\"seedproxy\".\"schema_version\"') IS NOT NULL");
  if (std::string(PQgetvalue(present.get(), 0, 0)) != "t") return 0;
  auto version = connection.query(
      "reading the seed registry's version",
      R"sql(SELECT coalesce(max("version"), 0) FROM "seedproxy"."schema_version")sql");
  return std::stoi(PQgetvalue(version.get(), 0, 0));
}

void lock_registry(ControlConnection& connection) {
  (void)connection.query("locking the seed registry", "SELECT pg_advisory_lock($1::bigint)",
                         {std::to_string(registry_lock_key)});
}

void unlock_registry(ControlConnection& connection) {
  (void)connection.query("unlocking the seed registry", "SELECT pg_advisory_unlock($1::bigint)",
                         {std::to_string(registry_lock_key)});
}

int migrate_registry(ControlConnection& connection) {
  // "already exists, skipping" notices would land on the proxy's stderr.
  (void)connection.query("quieting the seed registry migration",
                         "SET LOCAL client_min_messages TO warning");
  (void)connection.query("creating the seedproxy schema",
                         R"sql(CREATE SCHEMA IF NOT EXISTS "seedproxy")sql");
  (void)connection.query("creating the seed registry's version table",
                         R"sql(CREATE TABLE IF NOT EXISTS "seedproxy"."schema_version" (
  "version" integer PRIMARY KEY,
  "description" text NOT NULL,
  "applied_at" timestamptz NOT NULL DEFAULT now(),
  "applied_by" text NOT NULL DEFAULT current_user))sql");
  int installed = registry_version(connection);
  if (installed > registry_schema_version)
    throw std::runtime_error("the seed registry (schema \"seedproxy\") is at version " +
                             std::to_string(installed) + ", newer than version " +
                             std::to_string(registry_schema_version) +
                             " this seedproxy understands; upgrade this proxy");
  for (const auto& migration : migrations()) {
    if (migration.version <= installed) continue;
    const std::string purpose = std::string("seed registry migration ") +
                                std::to_string(migration.version) + " (" + migration.purpose + ")";
    for (const char* statement : migration.statements)
      (void)connection.query(purpose.c_str(), statement);
    (void)connection.query(
        purpose.c_str(),
        R"sql(INSERT INTO "seedproxy"."schema_version" ("version", "description") VALUES ($1::integer, $2))sql",
        {std::to_string(migration.version), migration.purpose});
    installed = migration.version;
  }
  return installed;
}

void upgrade_registry(ControlConnection& connection) {
  lock_registry(connection);
  try {
    (void)connection.query("starting the seed registry migration", "BEGIN");
    (void)migrate_registry(connection);
    (void)connection.query("committing the seed registry migration", "COMMIT");
  } catch (...) {
    try {
      if (connection.in_transaction())
        (void)connection.query("rolling back the seed registry migration", "ROLLBACK");
      unlock_registry(connection);
    } catch (const std::exception&) {  // the connection went: the lock went with it
    }
    throw;
  }
  unlock_registry(connection);
}

}  // namespace seedproxy::seeds
