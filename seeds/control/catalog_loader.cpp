// Catalog queries over pg_class / pg_attribute, grouped into relations with their attnums. One
// filter for every query, so a targeted load and the count agree with a full load.
#include "seeds/control/catalog_loader.hpp"

#include <cstdlib>
#include <string_view>

#include "seeds/control/object_mark.hpp"

namespace seedproxy::seeds {
namespace {

// Relations the resolver knows: no indexes, sequences or composite types; no TOAST or temporary
// schemas (another session's temporary tables are not this one's).
constexpr std::string_view relations_filter = R"sql(
      c.relkind IN ('r', 'v', 'm', 'f', 'p')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%')sql";

std::string with_filter(std::string_view before, std::string_view after = {}) {
  return std::string(before) + std::string(relations_filter) + std::string(after);
}

// Rows of (schema, name, column, attnum, relkind, relpersistence, marked, relnatts,
// relhassubclass), ordered by relation
// and attnum. A relation without columns (CREATE TABLE t ()) is listed with one NULL column.
std::vector<rewriter::Relation> read_relations(const Result& result) {
  std::vector<rewriter::Relation> relations;
  const int rows = PQntuples(result.get());
  for (int row = 0; row < rows; ++row) {
    if (PQgetisnull(result.get(), row, 0)) continue;  // load_relations: nothing named is left
    const char* schema = PQgetvalue(result.get(), row, 0);
    const char* name = PQgetvalue(result.get(), row, 1);
    if (relations.empty() || relations.back().schema != schema || relations.back().name != name) {
      relations.push_back({schema, name, {}});
      relations.back().kind = PQgetvalue(result.get(), row, 4)[0];
      relations.back().unlogged = PQgetvalue(result.get(), row, 5)[0] == 'u';
      relations.back().natts = std::atoi(PQgetvalue(result.get(), row, 7));
      relations.back().may_have_children = PQgetvalue(result.get(), row, 8)[0] == 't';
    }
    if (PQgetisnull(result.get(), row, 2)) continue;
    auto& relation = relations.back();
    relation.columns.emplace_back(PQgetvalue(result.get(), row, 2));
    // Attnums, gaps of dropped columns included: seeds' places are counted in them.
    relation.attnums.push_back(std::atoi(PQgetvalue(result.get(), row, 3)));
    // A column seedproxy added for a seed, hidden once the seed is rolled back (table_shape).
    relation.marked.push_back(PQgetvalue(result.get(), row, 6)[0] == 't');
  }
  return relations;
}

}  // namespace

rewriter::Catalog load_catalog(ControlConnection& connection, std::uint64_t version) {
  static const std::string sql = with_filter(R"sql(
    SELECT n.nspname, c.relname, a.attname, a.attnum, c.relkind, c.relpersistence,
           d.description IS NOT DISTINCT FROM $1, c.relnatts, c.relhassubclass
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_attribute a
      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_catalog.pg_description d
      ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
         AND d.objsubid = a.attnum
    WHERE )sql",
                                             R"sql(
    ORDER BY n.nspname, c.relname, a.attnum)sql");
  const auto result = connection.query("loading the catalog", sql, {object_mark});
  return rewriter::Catalog(read_relations(result), version);
}

NamedRelations load_relations(ControlConnection& connection,
                              const std::vector<std::string>& names) {
  // One round trip: the count rides on every row, and on one row of NULLs when nothing is named
  // any more (DROP TABLE).
  static const std::string sql = with_filter(R"sql(
    WITH RECURSIVE named AS (
      SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = ANY ($1::text[])
      UNION
      SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN named ON i.inhparent = named.oid),
    total AS (
      SELECT count(*) AS relations FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE )sql",
                                             with_filter(R"sql(),
    loaded AS (
      SELECT n.nspname, c.relname, a.attname, a.attnum, c.relkind, c.relpersistence,
             d.description IS NOT DISTINCT FROM $2 AS marked, c.relnatts, c.relhassubclass
      FROM named
      JOIN pg_catalog.pg_class c ON c.oid = named.oid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      LEFT JOIN pg_catalog.pg_attribute a
        ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_description d
        ON d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.objsubid = a.attnum
      WHERE )sql",
                                                         R"sql()
    SELECT loaded.nspname, loaded.relname, loaded.attname, loaded.attnum, loaded.relkind,
           loaded.relpersistence, loaded.marked, loaded.relnatts, loaded.relhassubclass,
           total.relations
    FROM total LEFT JOIN loaded ON true
    ORDER BY loaded.nspname, loaded.relname, loaded.attnum)sql"));
  const auto result = connection.query("loading the relations DDL named", sql,
                                       {text_array_literal(names), object_mark});
  NamedRelations out;
  out.relations = read_relations(result);
  out.catalog_size = static_cast<std::size_t>(count_at(result, 0, 9));
  return out;
}

}  // namespace seedproxy::seeds
