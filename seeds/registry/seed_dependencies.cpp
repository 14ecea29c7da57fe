// Recording cross-table dependencies in seedproxy.seeds (see seed_dependencies.hpp).
#include "seeds/registry/seed_dependencies.hpp"

#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {

void record_dependencies(ControlConnection& connection, const ValidatedSeed& seed) {
  const auto& d = seed.definition;
  const std::string described = seed.cross_table ? seed.dependencies.describe(d.table) : "";
  const std::string refusal = seed.cross_table ? seed.dependencies.refusal : "";
  const std::vector<std::string> parameters{d.schema, d.table, d.attribute, described, refusal};
  // Asked first: an UPDATE of no row would still raise the registry's change counter (a
  // statement trigger), and every proxy would reload for nothing.
  const auto stale = connection.query("reading a seed's recorded dependencies", R"sql(SELECT 1
FROM "seedproxy"."seeds"
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3
  AND ("dependencies", "materialize_refusal") IS DISTINCT FROM (NULLIF($4, ''), NULLIF($5, '')))sql",
                                      parameters);
  if (PQntuples(stale.get()) == 0) return;
  (void)connection.query("recording a seed's dependencies", R"sql(UPDATE "seedproxy"."seeds"
SET "dependencies" = NULLIF($4, ''), "materialize_refusal" = NULLIF($5, '')
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3)sql",
                         parameters);
}

bool write_dependency_error(ControlConnection& connection, const std::string& database,
                            const std::string& schema, const std::string& table,
                            const std::string& attribute, const std::string& error) {
  const auto result =
      connection.query("recording a seed's broken dependency", R"sql(UPDATE "seedproxy"."seeds"
SET "dependency_error" = NULLIF($4, ''), "updated_at" = now()
WHERE "schema_name" = $1 AND "table_name" = $2 AND "attribute_name" = $3
  AND "dependency_error" IS DISTINCT FROM NULLIF($4, ''))sql",
                       {schema, table, attribute, error});
  if (std::string(PQcmdTuples(result.get())) != "1") return false;
  (void)connection.query("announcing a registry change", "SELECT pg_catalog.pg_notify($1, $2)",
                         {registry_channel, database});
  return true;
}

std::string optional_seed_column(const char* alias, const char* column) {
  return std::string("(pg_catalog.to_jsonb(") + alias + ") ->> '" + column + "')";
}

}  // namespace seedproxy::seeds
