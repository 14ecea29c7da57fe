// SnapshotRegistry: the store, the watcher, the applier and the DDL-seed queue wired together.
#include "seeds/registry/snapshots.hpp"

#include <stdexcept>

#include "common/log.hpp"
#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {

SnapshotRegistry::SnapshotRegistry(ControlTarget target, FleetSettings fleet,
                                   double refresh_seconds, config::Validation validation)
    // The store calls wake only after construction: when a database is added or a refresh asked.
    : store_([this] { watcher_.wake(); }),
      watcher_(target, store_, refresh_seconds, fleet),
      applier_(target, fleet.instance, store_, watcher_, changes_, validation),
      ddl_seeds_(std::move(target), fleet.instance, store_, watcher_, changes_,
                 std::move(validation)) {}

SnapshotRegistry::~SnapshotRegistry() {
  // Its thread calls the applier and the DDL-seed queue, which are destroyed first.
  watcher_.stop();
}

void SnapshotRegistry::start(const std::vector<config::SeedSpec>& seeds) {
  auto refusals = applier_.apply(seeds, SeedApplier::Mode::start);
  if (!refusals.empty()) {
    for (const auto& refusal : refusals) log::error("seeds", refusal);
    throw std::runtime_error(
        std::to_string(refusals.size()) +
        " seed(s) of the configuration were refused, so the proxy does not start; first: " +
        refusals.front());
  }
  watcher_.start({[this] { ddl_seeds_.serve(); }, [this] { applier_.retry_pending(); },
                  [this] { return applier_.pending(); }});
}

std::vector<std::string> SnapshotRegistry::apply_seeds(const std::vector<config::SeedSpec>& seeds) {
  return applier_.apply(seeds, SeedApplier::Mode::reload);
}

std::vector<SeedStatus> SnapshotRegistry::seed_statuses() const { return store_.seed_statuses(); }

std::vector<std::string> SnapshotRegistry::databases_with_registry() const {
  return store_.databases_with_registry();
}

std::string SnapshotRegistry::read_failure(std::span<const std::string> configured) const {
  return store_.read_failure(configured);
}

bool SnapshotRegistry::covers(std::string_view database) const noexcept {
  return watchable_database(database);
}

std::uint64_t SnapshotRegistry::watch(std::string_view database) noexcept {
  return store_.watch(database);
}

std::shared_ptr<const DatabaseSnapshot> SnapshotRegistry::current(
    std::string_view database) const noexcept {
  return store_.current(database);
}

void SnapshotRegistry::unwatch(std::string_view database) noexcept { store_.unwatch(database); }

std::uint64_t SnapshotRegistry::request_refresh(std::string_view database) noexcept {
  return store_.request_refresh(database);
}

std::uint64_t SnapshotRegistry::request_refresh(std::string_view database,
                                                const rewriter::CatalogEffect& effect,
                                                bool confirm_only) noexcept {
  return store_.request_refresh(database, effect, confirm_only);
}

bool SnapshotRegistry::trusted(std::string_view database) const noexcept {
  return store_.trusted(database);
}

SnapshotTrust SnapshotRegistry::trust(std::string_view database) const {
  return store_.trust(database);
}

std::vector<std::string> SnapshotRegistry::databases_with_live_seeds() const {
  return store_.databases_with_live_seeds();
}

void SnapshotRegistry::release(std::string_view database, std::shared_ptr<Completion> done) {
  SnapshotStore::Watched* d = store_.find(database);
  if (!d) return done->complete();  // never followed: nothing to let go
  watcher_.release(*d, std::move(done));
}

bool SnapshotRegistry::released(std::string_view database) const noexcept {
  const SnapshotStore::Watched* d = store_.find(database);
  return d && d->released.load();
}

bool SnapshotRegistry::refreshed(std::string_view database, std::uint64_t ticket) const noexcept {
  return store_.refreshed(database, ticket);
}

std::uint64_t SnapshotRegistry::outstanding(std::string_view database) const noexcept {
  return store_.outstanding(database);
}

bool SnapshotRegistry::settled(std::string_view database) const noexcept {
  return store_.settled(database);
}

boost::asio::awaitable<bool> SnapshotRegistry::wait_refreshed(
    std::string database, std::uint64_t ticket, std::chrono::steady_clock::duration timeout) {
  return store_.wait_refreshed(std::move(database), ticket, timeout);
}

bool SnapshotRegistry::wait_refreshed_blocking(std::string_view database, std::uint64_t ticket,
                                               std::chrono::steady_clock::duration timeout) {
  return store_.wait_refreshed_blocking(database, ticket, timeout);
}

void SnapshotRegistry::submit_ddl_seed(std::shared_ptr<DdlSeedJob> job) {
  ddl_seeds_.submit(std::move(job));
}

DdlSeedVerdict SnapshotRegistry::register_ddl_seed_now(const DdlSeedRequest& request) {
  return ddl_seeds_.register_now(request);
}

}  // namespace seedproxy::seeds
