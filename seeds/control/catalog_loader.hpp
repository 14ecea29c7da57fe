// Loading the catalog snapshot (relations and their physical columns) of one database: all of
// it, or the relations a DDL statement named, for a targeted refresh.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "rewriter/catalog/catalog.hpp"
#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

// Tables, views, materialized views, foreign and partitioned tables with their live columns.
[[nodiscard]] rewriter::Catalog load_catalog(ControlConnection& connection, std::uint64_t version);

struct NamedRelations {
  std::vector<rewriter::Relation> relations;
  // How many relations load_catalog() would read now, in the same snapshot: a patched catalog of
  // another size missed a change its names did not cover.
  std::size_t catalog_size = 0;
};

// The relations named one of `names` in any schema, and their inheritance descendants (children,
// partitions), as load_catalog() reads them; in one round trip with the catalog's size.
[[nodiscard]] NamedRelations load_relations(ControlConnection& connection,
                                            const std::vector<std::string>& names);

}  // namespace seedproxy::seeds
