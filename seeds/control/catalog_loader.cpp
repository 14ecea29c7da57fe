// Catalog queries over pg_class / pg_attribute, grouped into relations. One filter for all three,
// so a targeted load and the count agree with a full load.
#include "seeds/control/catalog_loader.hpp"

#include <string_view>

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

// A relation without columns (CREATE TABLE t ()) is listed with one NULL column name.
std::vector<rewriter::Relation> read_relations(const Result& result) {
  std::vector<rewriter::Relation> relations;
  const int rows = PQntuples(result.get());
  for (int row = 0; row < rows; ++row) {
    const char* schema = PQgetvalue(result.get(), row, 0);
    const char* name = PQgetvalue(result.get(), row, 1);
    if (relations.empty() || relations.back().schema != schema || relations.back().name != name)
      relations.push_back({schema, name, {}});
    if (!PQgetisnull(result.get(), row, 2))
      relations.back().columns.emplace_back(PQgetvalue(result.get(), row, 2));
  }
  return relations;
}

}  // namespace

rewriter::Catalog load_catalog(ControlConnection& connection, std::uint64_t version) {
  static const std::string sql = with_filter(R"sql(
    SELECT n.nspname, c.relname, a.attname
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_attribute a
      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE )sql",
                                             R"sql(
    ORDER BY n.nspname, c.relname, a.attnum)sql");
  const auto result = connection.query("loading the catalog", sql);
  return rewriter::Catalog(read_relations(result), version);
}

std::vector<rewriter::Relation> load_relations(ControlConnection& connection,
                                               const std::vector<std::string>& names) {
  static const std::string sql = with_filter(R"sql(
    WITH RECURSIVE named AS (
      SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname = ANY ($1::text[])
      UNION
      SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN named ON i.inhparent = named.oid)
    SELECT n.nspname, c.relname, a.attname
    FROM named
    JOIN pg_catalog.pg_class c ON c.oid = named.oid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_attribute a
      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE )sql",
                                             R"sql(
    ORDER BY n.nspname, c.relname, a.attnum)sql");
  const auto result =
      connection.query("loading the relations DDL named", sql, {text_array_literal(names)});
  return read_relations(result);
}

std::size_t count_relations(ControlConnection& connection) {
  static const std::string sql = with_filter(R"sql(
    SELECT count(*) FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE )sql");
  const auto result = connection.query("counting the catalog's relations", sql);
  return static_cast<std::size_t>(count_at(result, 0, 0));
}

}  // namespace seedproxy::seeds
