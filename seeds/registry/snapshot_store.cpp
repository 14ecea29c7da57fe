// The snapshot store: atomic snapshots, an append-only list of watched databases, tickets.
#include "seeds/registry/snapshot_store.hpp"

#include <algorithm>
#include <utility>

#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {

void SnapshotStore::Watched::publish(std::shared_ptr<const DatabaseSnapshot> loaded) noexcept {
  snapshot.store(std::move(loaded), std::memory_order_release);
}

void SnapshotStore::Watched::answer(std::uint64_t answered, const std::string& failure) {
  {
    std::lock_guard lock(failure_mutex);
    read_failure = failure;
  }
  completed.advance_to(answered);
}

rewriter::CatalogEffect SnapshotStore::Watched::take_effect() {
  std::lock_guard lock(failure_mutex);
  catalog_wanted = false;
  catalog_urgent = false;
  return std::exchange(pending_effect, {});
}

SnapshotStore::SnapshotStore(std::function<void()> wake) : wake_(std::move(wake)), list_(nullptr) {
  lists_.push_back(std::make_unique<const List>());
  list_.store(lists_.back().get(), std::memory_order_release);
}

SnapshotStore::~SnapshotStore() = default;

const SnapshotStore::List& SnapshotStore::list() const noexcept {
  return *list_.load(std::memory_order_acquire);
}

SnapshotStore::Watched* SnapshotStore::find(std::string_view database) const noexcept {
  for (Watched* d : list())
    if (d->name == database) return d;
  return nullptr;
}

SnapshotStore::Watched* SnapshotStore::find_or_add(std::string_view database) {
  if (Watched* d = find(database)) return d;
  std::lock_guard lock(add_mutex_);
  if (Watched* d = find(database)) return d;
  auto added = std::make_unique<Watched>();
  added->name = std::string(database);
  auto list = std::make_unique<List>(this->list());
  list->push_back(added.get());
  owned_.push_back(std::move(added));
  lists_.push_back(std::move(list));
  list_.store(lists_.back().get(), std::memory_order_release);
  wake_();
  return owned_.back().get();
}

std::uint64_t SnapshotStore::watch(std::string_view database) noexcept {
  if (!watchable_database(database)) return 0;
  Watched* d = find(database);
  try {
    if (!d) d = find_or_add(database);
  } catch (...) {
    return 0;  // out of memory: the session goes on without waiting
  }
  d->sessions.fetch_add(1);
  const bool was_released = d->released.exchange(false);
  if (!was_released && d->following.load() && d->snapshot.load(std::memory_order_acquire)) return 0;
  // Not followed (never, or let go while nobody used it): its first statement waits for a load.
  return request_refresh(database);
}

void SnapshotStore::unwatch(std::string_view database) noexcept {
  if (!watchable_database(database)) return;
  Watched* d = find(database);
  if (d && d->sessions.fetch_sub(1) == 1) wake_();
}

std::shared_ptr<const DatabaseSnapshot> SnapshotStore::current(
    std::string_view database) const noexcept {
  const Watched* d = find(database);
  return d ? d->snapshot.load(std::memory_order_acquire) : nullptr;
}

std::uint64_t SnapshotStore::request_refresh(std::string_view database) noexcept {
  Watched* d = find(database);
  if (!d) return 0;
  const std::uint64_t ticket = d->requested.fetch_add(1) + 1;
  if (!d->refresh_wanted.exchange(true)) wake_();
  return ticket;
}

std::uint64_t SnapshotStore::request_refresh(std::string_view database,
                                             const rewriter::CatalogEffect& effect,
                                             bool confirm_only) noexcept {
  if (effect.everything) return request_refresh(database);
  Watched* d = find(database);
  if (!d || effect.empty()) return 0;
  try {
    // The effect is in place before the ticket exists: a reload that answers the ticket read
    // `requested` first and takes the effect after, so it always applies it.
    std::lock_guard lock(d->failure_mutex);
    d->pending_effect.merge(effect);
  } catch (...) {
    return request_refresh(database);  // out of memory: read everything instead
  }
  const std::uint64_t ticket = d->requested.fetch_add(1) + 1;
  // An urgent request after a confirming one already pending wakes the watcher again.
  const bool urgent = !confirm_only && !d->catalog_urgent.exchange(true);
  if (!d->catalog_wanted.exchange(true) || urgent) wake_();
  return ticket;
}

namespace {

bool lease_fresh(const SnapshotStore::Watched& d) noexcept {
  const auto until = d.trusted_until.load(std::memory_order_acquire);
  return until == SnapshotStore::trusted_always ||
         SnapshotStore::Clock::now().time_since_epoch().count() < until;
}

std::uint64_t unanswered(const SnapshotStore::Watched& d) noexcept {
  const std::uint64_t asked = d.requested.load(std::memory_order_acquire);
  return asked > d.completed.value() ? asked : 0;
}

}  // namespace

bool SnapshotStore::trusted(std::string_view database) const noexcept {
  const Watched* d = find(database);
  return !d || lease_fresh(*d);
}

bool SnapshotStore::settled(std::string_view database) const noexcept {
  const Watched* d = find(database);
  return !d || (unanswered(*d) == 0 && lease_fresh(*d));
}

SnapshotTrust SnapshotStore::trust(std::string_view database) const {
  SnapshotTrust out;
  const Watched* d = find(database);
  if (!d) return out;
  const auto until = d->trusted_until.load(std::memory_order_acquire);
  const auto now = Clock::now().time_since_epoch().count();
  if (until == trusted_always || now < until) return out;
  out.trusted = false;
  // 0: never trusted since it was (re)followed.
  if (until > 0)
    out.seconds_untrusted = std::chrono::duration<double>(Clock::duration(now - until)).count();
  std::lock_guard lock(d->failure_mutex);
  out.why = d->read_failure;
  return out;
}

bool SnapshotStore::refreshed(std::string_view database, std::uint64_t ticket) const noexcept {
  const Watched* d = find(database);
  return !d || d->completed.value() >= ticket;
}

std::uint64_t SnapshotStore::outstanding(std::string_view database) const noexcept {
  const Watched* d = find(database);
  return d ? unanswered(*d) : 0;
}

boost::asio::awaitable<bool> SnapshotStore::wait_refreshed(
    std::string database, std::uint64_t ticket, std::chrono::steady_clock::duration timeout) {
  Watched* d = find(database);
  if (!d) co_return true;
  co_return co_await d->completed.wait_for(ticket, timeout);
}

bool SnapshotStore::wait_refreshed_blocking(std::string_view database, std::uint64_t ticket,
                                            std::chrono::steady_clock::duration timeout) {
  Watched* d = find(database);
  return !d || d->completed.wait_blocking(ticket, timeout);
}

std::uint64_t SnapshotStore::next_version() noexcept { return next_version_.fetch_add(1); }

std::vector<SeedStatus> SnapshotStore::seed_statuses() const {
  std::vector<SeedStatus> out;
  for (const Watched* d : list())
    // A released database's snapshot is not followed: what it says may be gone (DROP DATABASE).
    if (const auto snapshot = d->snapshot.load(std::memory_order_acquire);
        snapshot && !d->released.load())
      out.insert(out.end(), snapshot->statuses.begin(), snapshot->statuses.end());
  return out;
}

std::vector<std::string> SnapshotStore::databases_with_registry() const {
  std::vector<std::string> out;
  for (const Watched* d : list())
    if (const auto snapshot = d->snapshot.load(std::memory_order_acquire);
        snapshot && snapshot->registry && !d->released.load())
      out.push_back(d->name);
  return out;
}

std::vector<std::string> SnapshotStore::databases_with_live_seeds() const {
  std::vector<std::string> out;
  for (const Watched* d : list())
    if (const auto snapshot = d->snapshot.load(std::memory_order_acquire);
        snapshot && snapshot->registry && snapshot->active && !d->released.load())
      out.push_back(d->name);
  return out;
}

std::string SnapshotStore::read_failure(std::span<const std::string> configured) const {
  for (const Watched* d : list()) {
    const auto snapshot = d->snapshot.load(std::memory_order_acquire);
    const bool matters =
        (snapshot && snapshot->registry) ||
        std::find(configured.begin(), configured.end(), d->name) != configured.end();
    if (!matters) continue;
    std::lock_guard lock(d->failure_mutex);
    if (!d->read_failure.empty()) return "database \"" + d->name + "\": " + d->read_failure;
  }
  return {};
}

}  // namespace seedproxy::seeds
