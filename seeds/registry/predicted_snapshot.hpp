// A session's own view of the catalog right after its ALTER TABLE committed: the previous
// snapshot with the change the statement's parse tree describes applied to the one relation it
// names, so the session's next statement need not wait for the targeted refresh (which still
// runs, and replaces this view once published). See docs/architecture.md ("Catalog refresh after
// DDL").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "rewriter/statements/catalog_prediction.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

// `previous` with `prediction` applied, the seeds compiled again, as `version`; null when the
// change cannot be predicted exactly from what the catalog holds: the relation is unknown, not a
// plain table, may have inheritance children or partitions (which the change reaches too), or
// its columns do not match what a successful statement implies (then the catalog is out of date
// and only the refresh is right). `search_path` resolves an unqualified name; the caller makes
// sure no temporary table of the session hides it.
[[nodiscard]] std::shared_ptr<const DatabaseSnapshot> predicted_snapshot(
    const DatabaseSnapshot& previous, const rewriter::CatalogPrediction& prediction,
    std::span<const std::string> search_path, std::uint64_t version);

}  // namespace seedproxy::seeds
