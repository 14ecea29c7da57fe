// The engine's side of the registry: one query for everything it decides on, requests and phase
// switches with NOTIFY, and the materialization row as a MaterializationStore.
#include "seeds/materialize/materialization_registry.hpp"

#include <map>

#include "seeds/registry/registry.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/registry/seed_dependencies.hpp"

namespace seedproxy::seeds {
namespace {

std::vector<std::string> seed_parameters(const SeedName& seed) {
  return {seed.schema, seed.table, seed.attribute};
}

void announce(ControlConnection& connection, const std::string& database) {
  (void)connection.query("announcing the registry change", "SELECT pg_notify($1, $2)",
                         {registry_channel, database});
}

}  // namespace

std::string_view to_string(SeedRequest request) noexcept {
  switch (request) {
    case SeedRequest::none:
      return "";
    case SeedRequest::materialize:
      return "materialize";
    case SeedRequest::rollback:
      return "rollback";
  }
  return "";
}

std::optional<SeedRequest> request_from_string(std::string_view text) noexcept {
  for (const SeedRequest request :
       {SeedRequest::none, SeedRequest::materialize, SeedRequest::rollback})
    if (to_string(request) == text) return request;
  return std::nullopt;
}

std::vector<EngineSeed> read_engine_seeds(ControlConnection& connection) {
  auto seeds = connection.query(
      "reading the seeds to materialize", R"sql(
SELECT s."schema_name", s."table_name", s."attribute_name", s."type", s."expression", s."phase",
       s."cross_table", s."materialize_policy", s."materialize_reads",
       s."materialize_window_seconds",
       coalesce((SELECT sum(r."reads") FROM "seedproxy"."read_counts" r
                 WHERE r."schema_name" = s."schema_name" AND r."table_name" = s."table_name"
                   AND r."attribute_name" = s."attribute_name"
                   AND r."minute" >= now() - s."materialize_window_seconds" * interval '1 second'),
                0),
       coalesce(s."requested", ''), s."paused",
       m."step", m."paused", m."column_added", m."rows_done", coalesce(m."rows_total", 0),
       m."rows_updated", m."rows_repaired", m."verify_pass", m."mismatches_in_pass",
       coalesce(m."error", ''), coalesce(m."owner", ''), m."updated_at"::text, m."rows_per_second",
       m."schema_name" IS NOT NULL, )sql" + optional_seed_column("s", "materialize_refusal") +
                                              ", " + optional_seed_column("s", "dependency_error") +
                                              R"sql(
FROM "seedproxy"."seeds" s
LEFT JOIN "seedproxy"."materializations" m USING ("schema_name", "table_name", "attribute_name")
ORDER BY 1, 2, 3)sql");
  // Arrays element by element, so no array literal has to be parsed.
  auto arrays = connection.query("reading the seeds' keys and watermarks", R"sql(
SELECT s."schema_name", s."table_name", s."attribute_name", 'k', k.ordinality, k.value
FROM "seedproxy"."seeds" s, unnest(s."key_columns") WITH ORDINALITY AS k(value, ordinality)
UNION ALL
SELECT m."schema_name", m."table_name", m."attribute_name", 'w', w.ordinality, w.value
FROM "seedproxy"."materializations" m, unnest(m."watermark") WITH ORDINALITY AS w(value, ordinality)
ORDER BY 1, 2, 3, 4, 5)sql");
  std::map<SeedName, std::pair<std::vector<std::string>, std::vector<std::string>>> lists;
  for (int row = 0; row < PQntuples(arrays.get()); ++row) {
    auto& entry =
        lists[{text_at(arrays, row, 0), text_at(arrays, row, 1), text_at(arrays, row, 2)}];
    (text_at(arrays, row, 3) == "k" ? entry.first : entry.second)
        .push_back(text_at(arrays, row, 5));
  }

  std::vector<EngineSeed> out;
  for (int row = 0; row < PQntuples(seeds.get()); ++row) {
    EngineSeed seed;
    seed.name = {text_at(seeds, row, 0), text_at(seeds, row, 1), text_at(seeds, row, 2)};
    seed.type = text_at(seeds, row, 3);
    seed.expression = text_at(seeds, row, 4);
    seed.phase = registry_phase(text_at(seeds, row, 5));
    seed.cross_table = text_at(seeds, row, 6) == "t";
    seed.policy = registry_policy(text_at(seeds, row, 7));
    seed.threshold_reads = count_at(seeds, row, 8);
    seed.window_seconds = count_at(seeds, row, 9);
    seed.reads_in_window = count_at(seeds, row, 10);
    // Unknown to this build (a newer registry's): nothing is done unasked.
    seed.requested = request_from_string(text_at(seeds, row, 11)).value_or(SeedRequest::none);
    seed.paused = text_at(seeds, row, 12) == "t";
    const auto found = lists.find(seed.name);
    if (found != lists.end()) seed.key_columns = found->second.first;
    seed.materialize_refusal = text_at(seeds, row, 27);
    seed.dependency_error = text_at(seeds, row, 28);
    if (text_at(seeds, row, 26) == "t") {
      StoredMaterialization m;
      m.state.step =
          step_from_string(text_at(seeds, row, 13)).value_or(MaterializationStep::not_started);
      m.state.paused = text_at(seeds, row, 14) == "t";
      m.state.column_added = text_at(seeds, row, 15) == "t";
      m.state.rows_done = count_at(seeds, row, 16);
      m.state.rows_total = count_at(seeds, row, 17);
      m.state.rows_updated = count_at(seeds, row, 18);
      m.state.rows_repaired = count_at(seeds, row, 19);
      m.state.verify_pass = static_cast<std::uint32_t>(count_at(seeds, row, 20));
      m.state.mismatches_in_pass = count_at(seeds, row, 21);
      m.state.error = text_at(seeds, row, 22);
      if (found != lists.end()) m.state.watermark = found->second.second;
      m.owner = text_at(seeds, row, 23);
      m.updated_at = text_at(seeds, row, 24);
      if (!null_at(seeds, row, 25)) {
        m.rows_per_second = std::stod(text_at(seeds, row, 25));
        m.state.rows_per_second = *m.rows_per_second;
      }
      seed.materialization = std::move(m);
    }
    out.push_back(std::move(seed));
  }
  return out;
}

void write_request(ControlConnection& connection, const std::string& database, const SeedName& seed,
                   SeedRequest request) {
  auto parameters = seed_parameters(seed);
  parameters.emplace_back(to_string(request));
  auto result = connection.query(
      "recording the request in the seed registry",
      R"sql(UPDATE "seedproxy"."seeds" SET "requested" = NULLIF($4, ''), "updated_at" = now()
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3)sql",
      parameters);
  if (std::string(PQcmdTuples(result.get())) != "1")
    throw std::runtime_error("seed " + seed.text() + " is not in the registry of database \"" +
                             database + "\"");
  announce(connection, database);
}

void write_paused(ControlConnection& connection, const std::string& database, const SeedName& seed,
                  bool paused) {
  auto parameters = seed_parameters(seed);
  parameters.emplace_back(paused ? "true" : "false");
  (void)connection.query(
      "recording PAUSE/RESUME in the seed registry",
      R"sql(UPDATE "seedproxy"."seeds" SET "paused" = $4::boolean, "updated_at" = now()
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3)sql",
      parameters);
  announce(connection, database);
}

bool write_phase(ControlConnection& connection, const std::string& database, const SeedName& seed,
                 rewriter::Phase phase) {
  auto parameters = seed_parameters(seed);
  parameters.emplace_back(rewriter::to_string(phase));
  auto result =
      connection.query("switching the seed's phase in the registry",
                       R"sql(UPDATE "seedproxy"."seeds" s SET "phase" = $4, "updated_at" = now(),
  "requested" = CASE WHEN $4 IN ('materialized', 'rolled_back') THEN NULL ELSE s."requested" END,
  "paused" = CASE WHEN $4 IN ('materialized', 'rolled_back') THEN false ELSE s."paused" END
FROM (SELECT "phase" FROM "seedproxy"."seeds"
      WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3 FOR UPDATE) before
WHERE s."schema_name" = $1 AND s."table_name" = $2 AND s."attribute_name" = $3
RETURNING before."phase" IS DISTINCT FROM $4)sql",
                       parameters);
  announce(connection, database);
  return PQntuples(result.get()) == 1 && std::string(PQgetvalue(result.get(), 0, 0)) == "t";
}

void clear_materialization(ControlConnection& connection, const SeedName& seed) {
  (void)connection.query("forgetting a finished materialization",
                         R"sql(DELETE FROM "seedproxy"."materializations"
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3)sql",
                         seed_parameters(seed));
}

RegistryMaterializationStore::RegistryMaterializationStore(ControlConnection& connection,
                                                           SeedName seed, std::string owner)
    : connection_(connection), seed_(std::move(seed)), owner_(std::move(owner)) {}

std::optional<MaterializationState> RegistryMaterializationStore::load() {
  for (auto& seed : read_engine_seeds(connection_))
    if (seed.name == seed_ && seed.materialization) return seed.materialization->state;
  return std::nullopt;
}

void RegistryMaterializationStore::save(const MaterializationState& state) {
  const bool finished = state.step == MaterializationStep::materialized ||
                        state.step == MaterializationStep::rolled_back;
  auto parameters = seed_parameters(seed_);
  parameters.insert(
      parameters.end(),
      {std::string(to_string(state.step)), state.paused ? "true" : "false",
       state.column_added ? "true" : "false", text_array_literal(state.watermark),
       std::to_string(state.rows_done), std::to_string(state.rows_total),
       std::to_string(state.rows_updated), std::to_string(state.rows_repaired),
       std::to_string(state.verify_pass), std::to_string(state.mismatches_in_pass), state.error,
       owner_, state.rows_per_second > 0 ? std::to_string(state.rows_per_second) : std::string(),
       finished ? "true" : "false"});
  (void)connection_.query("saving the materialization's state", R"sql(
INSERT INTO "seedproxy"."materializations" AS m
  ("schema_name", "table_name", "attribute_name", "step", "paused", "column_added", "watermark",
   "rows_done", "rows_total", "rows_updated", "rows_repaired", "verify_pass",
   "mismatches_in_pass", "error", "owner", "rows_per_second", "updated_at", "finished_at")
VALUES ($1, $2, $3, $4, $5::boolean, $6::boolean, $7::text[], $8::bigint, $9::bigint,
        $10::bigint, $11::bigint, $12::integer, $13::bigint, NULLIF($14, ''), $15,
        NULLIF($16, '')::double precision, now(), CASE WHEN $17::boolean THEN now() END)
ON CONFLICT ("schema_name", "table_name", "attribute_name") DO UPDATE SET
  "step" = EXCLUDED."step", "paused" = EXCLUDED."paused", "column_added" = EXCLUDED."column_added",
  "watermark" = EXCLUDED."watermark", "rows_done" = EXCLUDED."rows_done",
  "rows_total" = EXCLUDED."rows_total", "rows_updated" = EXCLUDED."rows_updated",
  "rows_repaired" = EXCLUDED."rows_repaired", "verify_pass" = EXCLUDED."verify_pass",
  "mismatches_in_pass" = EXCLUDED."mismatches_in_pass", "error" = EXCLUDED."error",
  "owner" = EXCLUDED."owner", "rows_per_second" = EXCLUDED."rows_per_second",
  "updated_at" = now(), "finished_at" = EXCLUDED."finished_at")sql",
                          parameters);
  // A rollback's column is gone now (the phase was announced before the drop): every proxy reads
  // its catalog again, so none keeps spelling '*' out around a column that no longer exists.
  if (state.step == MaterializationStep::rolled_back)
    (void)connection_.query("announcing the dropped column",
                            "SELECT pg_notify($1, pg_catalog.current_database())",
                            {registry_channel});
}

}  // namespace seedproxy::seeds
