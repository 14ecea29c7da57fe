// Loading the catalog snapshot (relations and their physical columns) of one database.
#pragma once

#include <cstdint>

#include "rewriter/catalog/catalog.hpp"
#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

// Tables, views, materialized views, foreign and partitioned tables with their live columns.
[[nodiscard]] rewriter::Catalog load_catalog(ControlConnection& connection, std::uint64_t version);

}  // namespace seedproxy::seeds
