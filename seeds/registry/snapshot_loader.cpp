// A snapshot from the registry rows and the catalog: statuses for every row, the definitions of
// the live ones compiled against the catalog, problems named per seed.
#include "seeds/registry/snapshot_loader.hpp"

#include <algorithm>

#include "seeds/control/catalog_loader.hpp"
#include "seeds/registry/fleet.hpp"
#include "seeds/registry/registry.hpp"
#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {
namespace {

// Every registry row as a status.
void add_rows(DatabaseSnapshot& snapshot, const std::string& database,
              const std::vector<RegistrySeed>& rows) {
  for (const auto& row : rows) {
    snapshot.statuses.push_back({database, row.schema, row.table, row.attribute, row.type,
                                 row.expression, row.phase, row.cross_table, row.reads_in_window,
                                 row.declared_by, "", false, row.place, row.dependencies,
                                 row.materialize_refusal, row.dependency_error,
                                 !row.dependency_error.empty()});
  }
}

// The definition of every status (whose problem is reset: compiling says anew). A rolled-back one
// only tells the rewriter that its column, while the engine has not dropped it yet, is no longer
// the table's.
std::vector<rewriter::SeedDefinition> definitions_of(DatabaseSnapshot& snapshot) {
  std::vector<rewriter::SeedDefinition> definitions;
  for (auto& status : snapshot.statuses) {
    status.inactive = false;
    if (status.phase == rewriter::Phase::rolled_back)
      status.problem = "rolled back: unknown to clients";
    else if (status.dependency_broken)
      status.problem = "dependency broken: " + status.dependency_error;
    else
      status.problem.clear();
    definitions.push_back({status.schema, status.table, status.attribute, status.type,
                           status.expression, status.phase, status.place});
  }
  return definitions;
}

std::size_t live_count(const std::vector<rewriter::SeedDefinition>& definitions) {
  return static_cast<std::size_t>(std::count_if(
      definitions.begin(), definitions.end(),
      [](const rewriter::SeedDefinition& d) { return d.phase != rewriter::Phase::rolled_back; }));
}

// Whether a rolled-back seed's column, added by seedproxy, is still in the catalog: the engine
// has not dropped it yet, so the table must still be served (its '*' hides that column).
bool drop_pending(const DatabaseSnapshot& snapshot) {
  for (const auto& status : snapshot.statuses) {
    if (status.phase != rewriter::Phase::rolled_back) continue;
    const auto* relation = snapshot.catalog.find(status.schema, status.table);
    if (!relation) continue;
    for (std::size_t i = 0; i < relation->columns.size(); ++i)
      if (relation->columns[i] == status.attribute && relation->added_by_seedproxy(i)) return true;
  }
  return false;
}

// Compiles the definitions against the snapshot's catalog. A seed that does not compile is not
// active: its status says why, and so does `problems`.
void compile_seeds(DatabaseSnapshot& snapshot,
                   const std::vector<rewriter::SeedDefinition>& definitions,
                   std::string& problems) {
  std::vector<std::string> errors;
  snapshot.seeds =
      rewriter::SeedSet::compile(definitions, snapshot.catalog, snapshot.version, errors);
  for (const auto& error : errors) {
    problems += "seed " + error + "; ";
    for (auto& status : snapshot.statuses) {
      const std::string name = status.schema + "." + status.table + "." + status.attribute;
      if (error.compare(0, name.size() + 2, name + ": ") == 0) {
        status.problem = "not active: " + error.substr(name.size() + 2);
        status.inactive = true;
      }
    }
  }
}

}  // namespace

LoadedSnapshot load_snapshot(ControlConnection& connection, const std::string& database,
                             std::uint64_t version) {
  LoadedSnapshot out;
  out.snapshot = std::make_shared<DatabaseSnapshot>();
  auto& snapshot = *out.snapshot;
  snapshot.version = version;
  out.schema_version = registry_version(connection);
  if (out.schema_version > 0) {
    snapshot.registry = true;
    // Read before the seeds: they are then at least as new as the version this proxy serves.
    if (out.schema_version >= fleet_schema_version)
      snapshot.registry_change = read_registry_change(connection);
    add_rows(snapshot, database, read_registry(connection, out.schema_version));
  }
  const auto definitions = definitions_of(snapshot);
  out.active = live_count(definitions);
  // Without a seed the catalog is not needed: nothing is rewritten. Rolled-back seeds need it
  // while one's column may still be there; once none is, the database is as without seeds.
  if (definitions.empty()) return out;
  snapshot.catalog = load_catalog(connection, version);
  snapshot.active = out.active > 0 || drop_pending(snapshot);
  if (!snapshot.active) {
    snapshot.catalog = {};
    return out;
  }
  compile_seeds(snapshot, definitions, out.problems);
  return out;
}

std::shared_ptr<DatabaseSnapshot> patch_snapshot(ControlConnection& connection,
                                                 const DatabaseSnapshot& previous,
                                                 const rewriter::CatalogEffect& effect,
                                                 std::uint64_t version, std::string& problems) {
  auto fresh = load_relations(connection, effect.names);
  auto catalog = previous.catalog.patched(effect.names, std::move(fresh.relations), version);
  if (catalog.size() != fresh.catalog_size) return nullptr;
  return with_catalog(previous, std::move(catalog), version, problems);
}

std::shared_ptr<DatabaseSnapshot> with_catalog(const DatabaseSnapshot& previous,
                                               rewriter::Catalog catalog, std::uint64_t version,
                                               std::string& problems) {
  auto snapshot = std::make_shared<DatabaseSnapshot>();
  snapshot->catalog = std::move(catalog);
  snapshot->version = version;
  snapshot->registry = previous.registry;
  snapshot->active = previous.active;
  snapshot->registry_change = previous.registry_change;
  snapshot->statuses = previous.statuses;
  compile_seeds(*snapshot, definitions_of(*snapshot), problems);
  return snapshot;
}

bool same_seeds(const DatabaseSnapshot& a, const DatabaseSnapshot& b) {
  return std::equal(a.statuses.begin(), a.statuses.end(), b.statuses.begin(), b.statuses.end(),
                    [](const SeedStatus& x, const SeedStatus& y) {
                      return x.schema == y.schema && x.table == y.table &&
                             x.attribute == y.attribute && x.type == y.type &&
                             x.expression == y.expression && x.phase == y.phase;
                    });
}

}  // namespace seedproxy::seeds
