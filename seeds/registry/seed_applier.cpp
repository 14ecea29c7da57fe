// The seed applier: group by database, validate everywhere, write under the lock, commit or not.
#include "seeds/registry/seed_applier.hpp"

#include <algorithm>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "seeds/registry/registry.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {
namespace {

// The seeds `connection`'s registry already holds, when any of `specs` could be one of them.
std::vector<RegistrySeed> registered_seeds(ControlConnection& connection,
                                           const std::string& database, bool wanted,
                                           std::vector<std::string>& refusals) {
  try {
    if (!wanted) return {};
    if (const int version = registry_version(connection); version > 0)
      return read_registry(connection, version);
  } catch (const std::exception& e) {
    refusals.push_back("cannot read the seed registry of database \"" + database +
                       "\": " + e.what());
  }
  return {};
}

// Seeds the registry has materializing or materialized have their column already: the validator
// must expect it rather than refuse it as a physical column.
bool column_added_by_proxy(const std::vector<RegistrySeed>& registered,
                           const config::SeedSpec& spec) {
  std::string schema, table;
  if (!pg::split_entity(spec.entity, schema, table)) return false;
  return std::any_of(registered.begin(), registered.end(), [&](const RegistrySeed& row) {
    return row.schema == schema && row.table == table && row.attribute == spec.attribute &&
           (row.phase == rewriter::Phase::materializing ||
            row.phase == rewriter::Phase::materialized);
  });
}

}  // namespace

struct SeedApplier::Work {
  std::string database;
  std::unique_ptr<ControlConnection> connection;
  std::vector<DeclaredSeed> declared;
  bool locked = false;     // holds the registry lock
  bool announced = false;  // the registry changed and a NOTIFY went out
};

struct SeedApplier::Application {
  Mode mode;
  std::vector<Work> work;  // in database-name order: proxies lock registries in the same order
  std::vector<std::string> refusals;
  std::vector<config::SeedSpec> unreachable;
};

SeedApplier::SeedApplier(ControlTarget target, std::string instance, SnapshotStore& store,
                         RegistryWatcher& watcher, std::mutex& changes, config::Validation bounds)
    : target_(std::move(target)),
      instance_(std::move(instance)),
      store_(store),
      watcher_(watcher),
      changes_(changes),
      bounds_(std::move(bounds)) {}

std::vector<std::string> SeedApplier::apply(const std::vector<config::SeedSpec>& seeds, Mode mode) {
  std::lock_guard serial(changes_);
  Application run{mode, {}, {}, {}};
  for (const auto& [database, specs] : databases_of(seeds, mode)) prepare(database, specs, run);
  if (run.refusals.empty())
    for (auto& item : run.work) write(item, run.refusals);
  if (!run.refusals.empty()) {
    roll_back(run);
    return run.refusals;
  }
  commit(run);
  publish(run);
  keep_unreachable(std::move(run.unreachable), mode);
  for (const auto& spec : seeds) (void)store_.find_or_add(spec.database);
  return run.refusals;
}

SeedApplier::SpecsByDatabase SeedApplier::databases_of(const std::vector<config::SeedSpec>& seeds,
                                                       Mode mode) const {
  SpecsByDatabase by_database;
  for (const auto& seed : seeds) by_database[seed.database].push_back(&seed);
  // Databases this instance may have declared seeds in before: its withdrawn declarations go.
  if (mode != Mode::retry)
    for (const SnapshotStore::Watched* d : store_.list())
      if (const auto snapshot = d->snapshot.load(); snapshot && snapshot->registry)
        by_database.try_emplace(d->name);
  return by_database;
}

void SeedApplier::prepare(const std::string& database,
                          const std::vector<const config::SeedSpec*>& specs, Application& run) {
  if (!watchable_database(database)) {
    run.refusals.push_back("database \"" + database +
                           "\" cannot hold seeds (it is the admin console's name or a template)");
    return;
  }
  Work item{database, nullptr, {}};
  try {
    item.connection = std::make_unique<ControlConnection>(target_, database);
  } catch (const std::exception& e) {
    if (run.mode == Mode::reload || specs.empty()) {
      if (!specs.empty())
        run.refusals.push_back("cannot apply the seeds of database \"" + database +
                               "\": " + e.what());
      return;
    }
    log::error("seeds", std::string(e.what()) + "; its " + std::to_string(specs.size()) +
                            " seed(s) are applied once it can be reached");
    for (const auto* spec : specs) run.unreachable.push_back(*spec);
    return;
  }
  validate(item, specs, run.refusals);
  run.work.push_back(std::move(item));
}

void SeedApplier::validate(Work& item, const std::vector<const config::SeedSpec*>& specs,
                           std::vector<std::string>& refusals) {
  const auto registered =
      registered_seeds(*item.connection, item.database, !specs.empty(), refusals);
  for (const auto* spec : specs) {
    ValidationOptions options;
    options.column_added_by_proxy = column_added_by_proxy(registered, *spec);
    options.bounds = bounds_;
    try {
      auto verdict = validate_seed(*item.connection, *spec, options);
      if (auto* refusal = std::get_if<Refusal>(&verdict))
        refusals.push_back(refusal->message);
      else {
        for (const auto& warning : std::get<ValidatedSeed>(verdict).warnings)
          log::warning("seeds", warning);
        item.declared.push_back({*spec, std::get<ValidatedSeed>(std::move(verdict))});
      }
    } catch (const std::exception& e) {
      refusals.push_back("cannot validate seed " + seed_name(*spec) + ": " + e.what());
    }
  }
}

void SeedApplier::write(Work& item, std::vector<std::string>& refusals) {
  try {
    const bool has_registry = registry_version(*item.connection) > 0;
    // Nothing to declare and no registry: leave the database untouched.
    if (item.declared.empty() && !has_registry) return;
    lock_registry(*item.connection);
    item.locked = true;
    (void)item.connection->query("starting the seed registry change", "BEGIN");
    (void)migrate_registry(*item.connection);
    bool changed = false;
    auto refused =
        apply_declarations(*item.connection, item.database, instance_, item.declared, changed);
    refusals.insert(refusals.end(), refused.begin(), refused.end());
    if (changed) {
      (void)item.connection->query("announcing the seed registry change",
                                   "SELECT pg_notify($1, $2)", {registry_channel, item.database});
      item.announced = true;
    }
  } catch (const std::exception& e) {
    refusals.push_back("cannot apply the seeds of database \"" + item.database + "\": " + e.what());
  }
}

void SeedApplier::roll_back(Application& run) {
  for (auto& item : run.work) {
    try {
      if (item.connection->in_transaction())
        (void)item.connection->query("rolling back the seed registry change", "ROLLBACK");
      if (item.locked) unlock_registry(*item.connection);
    } catch (const std::exception& e) {
      log::warning("seeds", e.what());
    }
  }
}

void SeedApplier::commit(Application& run) {
  for (auto& item : run.work) {
    try {
      if (item.connection->in_transaction())
        (void)item.connection->query("committing the seed registry change", "COMMIT");
      if (item.locked) unlock_registry(*item.connection);
    } catch (const std::exception& e) {
      // The earlier databases are committed already; say so plainly.
      run.refusals.push_back(
          "committing the seeds of database \"" + item.database +
          "\" failed (databases before it in name order were changed): " + e.what());
    }
  }
}

void SeedApplier::publish(const Application& run) {
  // Published before returning, so seed_statuses() right after a reload shows the new seeds.
  for (const auto& item : run.work)
    if (!item.declared.empty() || item.announced)
      watcher_.reload(*store_.find_or_add(item.database));
}

void SeedApplier::keep_unreachable(std::vector<config::SeedSpec> unreachable, Mode mode) {
  std::lock_guard lock(pending_mutex_);
  if (mode != Mode::retry)
    pending_ = std::move(unreachable);
  else
    pending_.insert(pending_.end(), unreachable.begin(), unreachable.end());
}

void SeedApplier::retry_pending() {
  std::vector<config::SeedSpec> pending;
  {
    std::lock_guard lock(pending_mutex_);
    pending.swap(pending_);
  }
  if (!pending.empty())
    for (const auto& refusal : apply(pending, Mode::retry)) log::error("seeds", refusal);
}

bool SeedApplier::pending() const {
  std::lock_guard lock(pending_mutex_);
  return !pending_.empty();
}

}  // namespace seedproxy::seeds
