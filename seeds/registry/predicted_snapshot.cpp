// Applying an ALTER TABLE's column changes or rename to one relation of a snapshot's catalog.
#include "seeds/registry/predicted_snapshot.hpp"

#include <algorithm>

#include "seeds/registry/snapshot_loader.hpp"

namespace seedproxy::seeds {
namespace {

using rewriter::ColumnChange;

std::ptrdiff_t index_of(const rewriter::Relation& relation, const std::string& column) {
  const auto at = std::find(relation.columns.begin(), relation.columns.end(), column);
  return at == relation.columns.end() ? -1 : at - relation.columns.begin();
}

void erase_column(rewriter::Relation& relation, std::ptrdiff_t index) {
  relation.columns.erase(relation.columns.begin() + index);
  relation.attnums.erase(relation.attnums.begin() + index);
  if (!relation.marked.empty()) relation.marked.erase(relation.marked.begin() + index);
}

// One change as PostgreSQL made it; false when the relation as known cannot have taken it (the
// statement succeeded, so the known columns are out of date).
bool apply(const ColumnChange& change, rewriter::Relation& relation) {
  const auto index = index_of(relation, change.column);
  switch (change.kind) {
    case ColumnChange::Kind::add:
      if (index >= 0) return change.missing_ok;  // IF NOT EXISTS: nothing added
      relation.columns.push_back(change.column);
      relation.attnums.push_back(++relation.natts);
      if (!relation.marked.empty()) relation.marked.push_back(false);
      return true;
    case ColumnChange::Kind::drop:
      if (index < 0) return change.missing_ok;  // IF EXISTS: nothing dropped
      erase_column(relation, index);
      return true;
    case ColumnChange::Kind::rename:
      if (index < 0 || index_of(relation, change.new_name) >= 0) return false;
      relation.columns[static_cast<std::size_t>(index)] = change.new_name;
      return true;
  }
  return false;
}

const rewriter::Relation* target_of(const rewriter::Catalog& catalog,
                                    const rewriter::CatalogPrediction& prediction,
                                    std::span<const std::string> search_path) {
  const auto* relation = prediction.schema.empty()
                             ? catalog.resolve(search_path, prediction.relation)
                             : catalog.find(prediction.schema, prediction.relation);
  if (!relation || relation->kind != 'r' || relation->natts < 0) return nullptr;
  if (relation->schema == "pg_catalog" || relation->schema == "information_schema") return nullptr;
  return relation;
}

}  // namespace

std::shared_ptr<const DatabaseSnapshot> predicted_snapshot(
    const DatabaseSnapshot& previous, const rewriter::CatalogPrediction& prediction,
    std::span<const std::string> search_path, std::uint64_t version) {
  // A relation the catalog does not know (ALTER TABLE IF EXISTS of a missing one included) is
  // left to the refresh: the catalog may merely be behind.
  const auto* target = target_of(previous.catalog, prediction, search_path);
  if (!target) return nullptr;
  rewriter::Relation after = *target;
  if (!prediction.new_name.empty()) {
    // Children keep their names; only the relation's own entry moves.
    if (previous.catalog.find(after.schema, prediction.new_name)) return nullptr;
    after.name = prediction.new_name;
  } else {
    // ADD, DROP and RENAME COLUMN reach inheritance children and partitions too.
    if (after.may_have_children) return nullptr;
    if (after.attnums.empty())
      for (std::size_t i = 0; i < after.columns.size(); ++i)
        after.attnums.push_back(static_cast<int>(i) + 1);
    for (const auto& change : prediction.columns)
      if (!apply(change, after)) return nullptr;
  }
  auto catalog = previous.catalog.replaced(target->schema, target->name, std::move(after), version);
  std::string problems;  // the refresh that confirms this view logs them
  return with_catalog(previous, std::move(catalog), version, problems);
}

}  // namespace seedproxy::seeds
