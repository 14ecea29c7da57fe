// One catalog query over pg_class / pg_attribute, grouped into relations with their attnums.
#include "seeds/control/catalog_loader.hpp"

#include <cstdlib>

#include "seeds/control/object_mark.hpp"

namespace seedproxy::seeds {

rewriter::Catalog load_catalog(ControlConnection& connection, std::uint64_t version) {
  const auto result = connection.query("loading the catalog", R"sql(
    SELECT n.nspname, c.relname, a.attname, a.attnum, c.relkind, c.relpersistence,
           d.description IS NOT DISTINCT FROM $1
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
    LEFT JOIN pg_catalog.pg_description d
      ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
         AND d.objsubid = a.attnum
    WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND a.attnum > 0 AND NOT a.attisdropped
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
    ORDER BY n.nspname, c.relname, a.attnum)sql",
                                       {object_mark});
  std::vector<rewriter::Relation> relations;
  const int rows = PQntuples(result.get());
  for (int row = 0; row < rows; ++row) {
    const char* schema = PQgetvalue(result.get(), row, 0);
    const char* name = PQgetvalue(result.get(), row, 1);
    if (relations.empty() || relations.back().schema != schema || relations.back().name != name) {
      relations.push_back({schema, name, {}});
      relations.back().kind = PQgetvalue(result.get(), row, 4)[0];
      relations.back().unlogged = PQgetvalue(result.get(), row, 5)[0] == 'u';
    }
    relations.back().columns.emplace_back(PQgetvalue(result.get(), row, 2));
    // Attnums, gaps of dropped columns included: seeds' places are counted in them.
    relations.back().attnums.push_back(std::atoi(PQgetvalue(result.get(), row, 3)));
    // A column seedproxy added for a seed, hidden once the seed is rolled back (table_shape).
    relations.back().marked.push_back(PQgetvalue(result.get(), row, 6)[0] == 't');
  }
  return rewriter::Catalog(std::move(relations), version);
}

}  // namespace seedproxy::seeds
