// Building a database's snapshot: in full from its registry and catalog, or from the previous
// snapshot with only the relations a DDL statement named read again (a targeted refresh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "rewriter/statements/catalog_effect.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

struct LoadedSnapshot {
  std::shared_ptr<DatabaseSnapshot> snapshot;
  std::size_t active = 0;  // seeds that are not rolled back
  int schema_version = 0;  // of the registry; 0: none
  std::string problems;    // seeds that did not compile, as one line; empty when none
};

// Reads the registry (its change version first, so the seeds are at least that new), and the
// whole catalog when a seed is active, and compiles the seeds.
[[nodiscard]] LoadedSnapshot load_snapshot(ControlConnection& connection,
                                           const std::string& database, std::uint64_t version);

// `previous` with the catalog entries `effect` names read again and the seeds compiled against
// the result; null when the patched catalog does not hold as many relations as the database
// (the DDL changed relations it did not name, as DROP TABLE of a partitioned table does): then
// only a full load is right. `effect` must not be `everything`.
[[nodiscard]] std::shared_ptr<DatabaseSnapshot> patch_snapshot(
    ControlConnection& connection, const DatabaseSnapshot& previous,
    const rewriter::CatalogEffect& effect, std::uint64_t version, std::string& problems);

// `previous` with `catalog` in place of its catalog and the seeds compiled against it: a patched
// or predicted catalog's snapshot, published as `version`.
[[nodiscard]] std::shared_ptr<DatabaseSnapshot> with_catalog(const DatabaseSnapshot& previous,
                                                             rewriter::Catalog catalog,
                                                             std::uint64_t version,
                                                             std::string& problems);

// Whether two snapshots hold the same seeds in the same phases (read counts aside).
[[nodiscard]] bool same_seeds(const DatabaseSnapshot& a, const DatabaseSnapshot& b);

}  // namespace seedproxy::seeds
