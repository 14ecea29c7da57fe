// The registry watcher: its thread's rounds, the registry connection of each followed database,
// full reloads, targeted catalog refreshes and heartbeats.
//
// A round opens and closes registry connections, reloads what is due, renews leases, runs the
// chores and sleeps in poll() on the registry sockets and the wake-up eventfd. Why a lease is
// renewed before the registry version is read, and trusted only then: docs/registry.md.
#include "seeds/registry/registry_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/log.hpp"
#include "seeds/registry/fleet.hpp"
#include "seeds/registry/registry_listener.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/registry/snapshot_loader.hpp"

namespace seedproxy::seeds {
namespace {

constexpr auto retry = std::chrono::seconds(1);
// How long a refresh that only confirms sessions' predicted catalogs may wait for more DDL.
constexpr auto confirm_delay = std::chrono::milliseconds(10);
// Sessions trust a snapshot for this share of the lease after the renewal was sent: the rest
// covers a statement on its way to PostgreSQL and the clocks' rates.
constexpr double trusted_share = 0.75;
// A reload whose heartbeat finds the registry changed meanwhile is repeated this often at most.
constexpr int reload_attempts = 3;

std::chrono::steady_clock::duration seconds(double value) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(value));
}

}  // namespace

RegistryWatcher::RegistryWatcher(ControlTarget target, SnapshotStore& store, double refresh_seconds,
                                 FleetSettings fleet)
    : target_(std::move(target)),
      store_(store),
      period_(seconds(refresh_seconds)),
      fleet_(std::move(fleet)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("cannot create the seed registry's wake-up eventfd");
}

RegistryWatcher::~RegistryWatcher() {
  stop();
  ::close(wake_fd_);
}

void RegistryWatcher::wake() noexcept {
  const std::uint64_t one = 1;
  // A full counter (never in practice) already means "wake up"; nothing to handle.
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
}

void RegistryWatcher::stop() noexcept {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard serial(reload_mutex_);
    for (auto& [database, link] : links_)
      close_link(*const_cast<SnapshotStore::Watched*>(database), link);
  }
  std::lock_guard handover(release_mutex_);
  for (auto& release : releases_) release.done->complete();
  releases_.clear();
}

void RegistryWatcher::release(SnapshotStore::Watched& database, std::shared_ptr<Completion> done) {
  database.released = true;
  {
    std::lock_guard handover(release_mutex_);
    releases_.push_back({&database, std::move(done)});
  }
  wake();
}

void RegistryWatcher::reload(SnapshotStore::Watched& database) {
  std::lock_guard serial(reload_mutex_);
  reload_locked(database);
}

void RegistryWatcher::reload_locked(SnapshotStore::Watched& database) {
  // Every request made before the registry is read is answered by this snapshot, and a catalog
  // refresh asked for before is covered by it.
  const std::uint64_t answered = database.requested.load();
  (void)database.take_effect();
  Link& link = links_[&database];
  std::string problems;
  try {
    // Over the database's registry connection when it has one; the first load of a database
    // the applier just wrote to may come before it.
    std::unique_ptr<ControlConnection> transient;
    ControlConnection& connection =
        link.listener ? link.listener->connection()
                      : *(transient = std::make_unique<ControlConnection>(target_, database.name));
    for (int attempt = 1;; ++attempt) {
      auto loaded = load_snapshot(connection, database.name, store_.next_version());
      problems = loaded.problems;
      const auto previous = database.snapshot.load();
      const bool changed = !previous || !same_seeds(*previous, *loaded.snapshot);
      const std::size_t total = loaded.snapshot->statuses.size();
      link.served = loaded.snapshot->registry_change;
      link.heartbeats = loaded.schema_version >= fleet_schema_version;
      database.publish(std::move(loaded.snapshot));
      if (changed && (previous || total > 0))
        log::info("seeds", "database \"" + database.name + "\": registry loaded, " +
                               std::to_string(loaded.active) + " of " + std::to_string(total) +
                               " seed(s) active or materialized");
      if (!link.heartbeats) {
        database.trusted_until = SnapshotStore::trusted_always;  // nobody waits for a lease
        break;
      }
      if (heartbeat_locked(database, link, connection) || attempt == reload_attempts) break;
    }
    if (link.listener) database.following = true;
    database.answer(answered, {});
  } catch (const std::exception& e) {
    problems = e.what();
    link_failed(database, link, problems);
    database.answer(answered, problems);
  }
  std::string& last = last_problems_[&database];
  if (problems != last && !problems.empty())
    log::error("seeds", "database \"" + database.name + "\": " + problems);
  last = problems;
}

bool RegistryWatcher::catalog_due(SnapshotStore::Watched& database, Link& link) {
  if (!database.catalog_wanted.load()) return false;
  if (database.catalog_urgent.load()) return true;
  // Only confirmations: the sessions that asked already see their change. One refresh for a
  // burst of DDL (a migration) instead of one per statement.
  const auto now = Clock::now();
  if (link.confirm_due == Clock::time_point{}) link.confirm_due = now + confirm_delay;
  return now >= link.confirm_due;
}

void RegistryWatcher::refresh_catalog_locked(SnapshotStore::Watched& database) {
  const std::uint64_t answered = database.requested.load();
  const auto effect = database.take_effect();
  Link& link = links_[&database];
  link.confirm_due = {};
  const auto previous = database.snapshot.load();
  // Without an active seed the catalog is not kept at all; without a connection, or for a change
  // names cannot bound, only a full reload is right.
  if (!previous || !previous->active) return database.answer(answered, {});
  if (!link.listener || effect.everything) return reload_locked(database);
  std::string problems;
  try {
    auto patched = patch_snapshot(link.listener->connection(), *previous, effect,
                                  store_.next_version(), problems);
    if (!patched) return reload_locked(database);
    database.publish(std::move(patched));
    database.answer(answered, {});
  } catch (const std::exception& e) {
    link_failed(database, link, e.what());
    database.answer(answered, e.what());
  }
}

bool RegistryWatcher::heartbeat_locked(SnapshotStore::Watched& database, Link& link,
                                       ControlConnection& connection) {
  // Renewed first and read after: if an engine read the heartbeat table before this renewal
  // committed (and saw the lease run out), the version read now already shows its change, and
  // the snapshot is not trusted on the strength of this renewal.
  const auto sent = Clock::now();
  renew_lease(connection, fleet_.instance, fleet_.address, link.served, fleet_.lease_seconds,
              link.served != link.announced);
  link.announced = link.served;
  link.next_heartbeat = sent + seconds(fleet_.lease_seconds / 3);
  if (read_registry_change(connection) > link.served) {
    database.refresh_wanted = true;
    return false;
  }
  const auto until = sent + seconds(fleet_.lease_seconds * trusted_share);
  database.trusted_until = until.time_since_epoch().count();
  return true;
}

void RegistryWatcher::link_failed(SnapshotStore::Watched& database, Link& link,
                                  const std::string& problem) {
  {
    std::lock_guard lock(database.failure_mutex);
    database.read_failure = problem;
  }
  if (link.listener && !link.listener->connection().healthy()) {
    log::warning("seeds", "database \"" + database.name + "\": " + problem + "; reconnecting");
    link.listener.reset();
    link.next_attempt = Clock::now() + retry;
    database.following = false;
  }
}

void RegistryWatcher::close_link(SnapshotStore::Watched& database, Link& link) {
  database.following = false;
  if (!link.listener) return;
  try {
    // Nobody is to wait for this proxy's lease in a database it no longer serves.
    if (link.heartbeats) leave_fleet(link.listener->connection(), fleet_.instance);
  } catch (const std::exception& e) {
    log::warning("seeds", "database \"" + database.name + "\": " + e.what());
  }
  link.listener.reset();
  link.announced = 0;
}

void RegistryWatcher::start(Chores chores) {
  chores_ = std::move(chores);
  // The first snapshot of every configured database before clients arrive.
  for (SnapshotStore::Watched* d : store_.list()) {
    d->refresh_wanted = false;
    if (!d->snapshot.load()) reload(*d);
  }
  thread_ = std::thread([this] { run(); });
}

void RegistryWatcher::run() {
  auto next_periodic = Clock::now() + period_;
  auto next_pending = Clock::now() + retry;
  while (!stopping_) {
    const auto now = Clock::now();
    // Connect first, then load: a change committed in between is announced, not missed.
    manage_links(now);
    const bool periodic = now >= next_periodic;
    if (periodic) next_periodic = now + period_;
    reload_due(periodic);
    heartbeats_due(Clock::now());
    if (Clock::now() >= next_pending) {
      next_pending = Clock::now() + retry;
      chores_.retry_pending();
    }
    chores_.serve_ddl_seeds();
    sleep_until(next_deadline(next_periodic));
  }
}

bool RegistryWatcher::wanted(SnapshotStore::Watched& database, Link& link, Clock::time_point now) {
  const auto snapshot = database.snapshot.load();
  const bool needed = database.sessions.load() > 0 || !snapshot || snapshot->active ||
                      database.refresh_wanted.load();
  if (needed) {
    link.idle = false;
    return true;
  }
  if (!link.idle) {
    link.idle = true;
    link.idle_since = now;
  }
  return now - link.idle_since < linger;
}

void RegistryWatcher::manage_links(Clock::time_point now) {
  std::vector<Release> releases;
  {
    // Taken before the connections are looked at: a release handed over now is carried out now.
    std::lock_guard handover(release_mutex_);
    releases.swap(releases_);
  }
  std::lock_guard serial(reload_mutex_);
  for (SnapshotStore::Watched* d : store_.list()) {
    Link& link = links_[d];
    if (d->released.load()) {
      close_link(*d, link);
      d->trusted_until = 0;  // a session that comes back waits for a fresh load
      continue;
    }
    if (!wanted(*d, link, now)) {
      close_link(*d, link);
      continue;
    }
    if (link.listener || now < link.next_attempt) continue;
    try {
      const int user_timeout_ms = static_cast<int>(std::ceil(fleet_.lease_seconds * 1000));
      link.listener = std::make_unique<RegistryListener>(target_, d->name, user_timeout_ms);
      link.last_problem.clear();
      d->refresh_wanted = true;  // changes while it was down were not announced
    } catch (const std::exception& e) {
      link.next_attempt = now + retry;
      if (e.what() != link.last_problem) log::warning("seeds", e.what());
      link.last_problem = e.what();
      std::lock_guard lock(d->failure_mutex);
      d->read_failure = e.what();
    }
  }
  for (auto& release : releases) release.done->complete();
}

void RegistryWatcher::reload_due(bool periodic) {
  for (SnapshotStore::Watched* d : store_.list()) {
    if (d->released.load()) continue;
    std::lock_guard serial(reload_mutex_);
    const bool followed = links_[d].listener != nullptr;
    if (d->refresh_wanted.exchange(false) || (periodic && followed) || !d->snapshot.load())
      reload_locked(*d);
    else if (catalog_due(*d, links_[d]))
      refresh_catalog_locked(*d);
  }
}

void RegistryWatcher::heartbeats_due(Clock::time_point now) {
  for (SnapshotStore::Watched* d : store_.list()) {
    std::lock_guard serial(reload_mutex_);
    Link& link = links_[d];
    if (!link.listener || !link.heartbeats || now < link.next_heartbeat) continue;
    try {
      if (!heartbeat_locked(*d, link, link.listener->connection()))
        reload_locked(*d);  // the registry moved and the notification was lost
    } catch (const std::exception& e) {
      link_failed(*d, link, e.what());
    }
  }
}

RegistryWatcher::Clock::time_point RegistryWatcher::next_deadline(Clock::time_point periodic) {
  auto deadline = periodic;
  // A database without a snapshot or a connection it wants, or seeds waiting: try again soon.
  if (chores_.pending()) deadline = std::min(deadline, Clock::now() + retry);
  std::lock_guard serial(reload_mutex_);
  for (const SnapshotStore::Watched* d : store_.list()) {
    const Link& link = links_[d];
    if (link.listener && link.heartbeats) deadline = std::min(deadline, link.next_heartbeat);
    if (link.listener && link.idle) deadline = std::min(deadline, link.idle_since + linger);
    if (link.confirm_due != Clock::time_point{}) deadline = std::min(deadline, link.confirm_due);
    if (!d->released.load() && (!d->snapshot.load() || (!link.listener && !link.idle)))
      deadline = std::min(deadline, std::max(link.next_attempt, Clock::now() + retry / 10));
  }
  return deadline;
}

void RegistryWatcher::sleep_until(Clock::time_point deadline) {
  std::vector<pollfd> fds{pollfd{wake_fd_, POLLIN, 0}};
  std::vector<SnapshotStore::Watched*> polled;
  {
    std::lock_guard serial(reload_mutex_);
    for (SnapshotStore::Watched* d : store_.list()) {
      Link& link = links_[d];
      if (!link.listener) continue;
      // A query since the last round may have read notifications off the socket already.
      try {
        if (link.listener->drain()) {
          d->refresh_wanted = true;
          deadline = Clock::now();
        }
      } catch (const std::exception& e) {
        link_failed(*d, link, e.what());
        continue;
      }
      fds.push_back(pollfd{link.listener->socket(), POLLIN, 0});
      polled.push_back(d);
    }
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  const int timeout = static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 60000));
  if (::poll(fds.data(), fds.size(), timeout) < 0) return;  // EINTR: the next round comes sooner
  if (fds[0].revents & POLLIN) {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
  }
  std::lock_guard serial(reload_mutex_);
  for (std::size_t i = 0; i < polled.size(); ++i) {
    if (!fds[i + 1].revents) continue;
    SnapshotStore::Watched& d = *polled[i];
    Link& link = links_[&d];
    if (!link.listener) continue;
    try {
      if (link.listener->drain()) d.refresh_wanted = true;
    } catch (const std::exception& e) {
      link_failed(d, link, e.what());
    }
  }
}

}  // namespace seedproxy::seeds
