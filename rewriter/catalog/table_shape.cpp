// Ordering a table's columns and seeds by the place each seed was declared at.
#include "rewriter/catalog/table_shape.hpp"

#include <algorithm>
#include <climits>
#include <tuple>

namespace seedproxy::rewriter {
namespace {

// Sorts after attnum `after`; a seed after the physical column of that attnum (rank 1), seeds of
// one place by declaration.
struct Key {
  int after = 0;
  int rank = 0;
  std::int64_t order = 0;
  bool operator<(const Key& other) const {
    return std::tie(after, rank, order) < std::tie(other.after, other.rank, other.order);
  }
};

Key key_of(const ShapeColumn& column) {
  if (!column.seed) return {column.attnum, 0, 0};
  const SeedPlace& place = column.seed->place;
  if (place.after_attnum) return {*place.after_attnum, 1, place.order};
  // Declared before places were kept: at its own column once it has one, else after everything.
  if (column.physical) return {column.attnum, 0, 0};
  return {INT_MAX, 1, place.order};
}

}  // namespace

TableShape table_shape(const Relation& relation, std::span<const VirtualAttribute* const> live) {
  TableShape shape;
  shape.columns.reserve(relation.columns.size() + live.size());
  for (std::size_t i = 0; i < relation.columns.size(); ++i) {
    const auto& name = relation.columns[i];
    const auto seed = std::find_if(live.begin(), live.end(),
                                   [&](const VirtualAttribute* a) { return a->name == name; });
    // Added by a seed's materialization and no longer a live seed's: its seed was rolled back,
    // and the column goes (or went: the catalog may be older than the engine's DROP COLUMN).
    // Clients already see the table as after that DROP COLUMN; upstream's '*' still has it.
    if (seed == live.end() && relation.added_by_seedproxy(i)) {
      shape.physical_first = false;
      shape.hidden.push_back({name, nullptr, true, relation.attnum(i)});
      continue;
    }
    shape.columns.push_back({name, seed == live.end() ? nullptr : *seed, true, relation.attnum(i)});
  }
  for (const auto* seed : live)
    if (seed->resolved_by_proxy() && std::find(relation.columns.begin(), relation.columns.end(),
                                               seed->name) == relation.columns.end())
      shape.columns.push_back({seed->name, seed, false, 0});
  if (live.empty()) return shape;
  std::stable_sort(
      shape.columns.begin(), shape.columns.end(),
      [](const ShapeColumn& a, const ShapeColumn& b) { return key_of(a) < key_of(b); });
  int last_attnum = 0;
  bool past_physical = false;
  for (const auto& column : shape.columns) {
    if (!shape.physical_first) break;
    if (!column.physical) {
      past_physical = true;
    } else if (past_physical || column.attnum < last_attnum) {
      shape.physical_first = false;
      break;
    } else {
      last_attnum = column.attnum;
    }
  }
  return shape;
}

}  // namespace seedproxy::rewriter
