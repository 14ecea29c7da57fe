// The order in which a table shows its columns and live seeds ('*', 'alias.*', RETURNING *,
// TABLE, positional INSERT): each seed where ADD COLUMN would have put it when it was declared,
// whatever order seeds were materialized in.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"

namespace seedproxy::rewriter {

struct ShapeColumn {
  std::string name;
  const VirtualAttribute* seed = nullptr;  // the live seed of this name, or null
  bool physical = true;                    // the relation upstream has the column
  int attnum = 0;                          // its attnum upstream (physical), else 0
};

struct TableShape {
  std::vector<ShapeColumn> columns;  // in the order the table shows them
  // Columns upstream has that clients no longer see: a rolled-back seed's column, which the
  // engine drops (or has dropped, this catalog being older). Upstream still counts them, in an
  // alias list for one; their presence makes physical_first false.
  std::vector<ShapeColumn> hidden;
  // The physical columns come first and in attnum order, so the relation's plain '*' shows them
  // as the shape does, and only columns upstream lacks follow: '*' needs no spelling out.
  bool physical_first = true;
};

// `live`: the relation's live seeds (SeedSet::live_for). A physical column named like one of
// them is that seed's own column (materializing or materialized) and is shown at the seed's
// place, not at its attnum; a seed without a column is shown only if the proxy resolves it.
[[nodiscard]] TableShape table_shape(const Relation& relation,
                                     std::span<const VirtualAttribute* const> live);

}  // namespace seedproxy::rewriter
