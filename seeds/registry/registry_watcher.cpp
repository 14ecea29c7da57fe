// The registry watcher: its thread's rounds, and reloading one database's snapshot.
//
// A round listens, reloads what is due, runs the chores and sleeps in poll() on the LISTEN sockets
// and the wake-up eventfd. A reload reads the registry, compiles the active seeds against the
// catalog and publishes the snapshot.
#include "seeds/registry/registry_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>

#include "common/log.hpp"
#include "seeds/control/catalog_loader.hpp"
#include "seeds/registry/registry.hpp"
#include "seeds/registry/registry_listener.hpp"
#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {
namespace {

constexpr auto retry = std::chrono::seconds(1);

// Every registry row as a status, and its definition: a rolled-back one only tells the rewriter
// that its column, while the engine has not dropped it yet, is no longer the table's.
std::vector<rewriter::SeedDefinition> add_rows(DatabaseSnapshot& snapshot,
                                               const std::string& database,
                                               const std::vector<RegistrySeed>& rows) {
  std::vector<rewriter::SeedDefinition> definitions;
  for (const auto& row : rows) {
    SeedStatus status{
        database,  row.schema,      row.table,           row.attribute,   row.type, row.expression,
        row.phase, row.cross_table, row.reads_in_window, row.declared_by, ""};
    if (row.phase == rewriter::Phase::rolled_back)
      status.problem = "rolled back: unknown to clients";
    definitions.push_back(
        {row.schema, row.table, row.attribute, row.type, row.expression, row.phase, row.place});
    snapshot.statuses.push_back(std::move(status));
  }
  return definitions;
}

// Compiles the definitions against the database's catalog. A seed that does not compile is not
// active: its status says why, and so does `problems`.
void compile_seeds(ControlConnection& connection, DatabaseSnapshot& snapshot,
                   const std::vector<rewriter::SeedDefinition>& definitions,
                   std::string& problems) {
  snapshot.catalog = load_catalog(connection, snapshot.version);
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

// Whether two snapshots hold the same seeds in the same phases (read counts aside).
bool same_seeds(const DatabaseSnapshot& a, const DatabaseSnapshot& b) {
  return std::equal(a.statuses.begin(), a.statuses.end(), b.statuses.begin(), b.statuses.end(),
                    [](const SeedStatus& x, const SeedStatus& y) {
                      return x.schema == y.schema && x.table == y.table &&
                             x.attribute == y.attribute && x.type == y.type &&
                             x.expression == y.expression && x.phase == y.phase;
                    });
}

struct Loaded {
  std::shared_ptr<DatabaseSnapshot> snapshot;
  std::size_t active = 0;  // seeds that are not rolled back
};

Loaded load_snapshot(ControlConnection& connection, const std::string& database,
                     std::uint64_t version, std::string& problems) {
  Loaded out{std::make_shared<DatabaseSnapshot>()};
  out.snapshot->version = version;
  std::vector<RegistrySeed> rows;
  if (const int version = registry_version(connection); version > 0) {
    out.snapshot->registry = true;
    rows = read_registry(connection, version);
  }
  const auto definitions = add_rows(*out.snapshot, database, rows);
  out.active = static_cast<std::size_t>(std::count_if(
      definitions.begin(), definitions.end(),
      [](const rewriter::SeedDefinition& d) { return d.phase != rewriter::Phase::rolled_back; }));
  // Without a seed the catalog is not needed: nothing is rewritten. A rolled-back one needs it
  // while its column may still be there.
  if (!definitions.empty()) compile_seeds(connection, *out.snapshot, definitions, problems);
  return out;
}

}  // namespace

RegistryWatcher::RegistryWatcher(ControlTarget target, SnapshotStore& store, double refresh_seconds)
    : target_(std::move(target)),
      store_(store),
      period_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(refresh_seconds))),
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
}

void RegistryWatcher::reload(SnapshotStore::Watched& database) {
  std::lock_guard serial(reload_mutex_);
  // Every request made before the registry is read is answered by this snapshot.
  const std::uint64_t answered = database.requested.load();
  std::string problems;
  try {
    ControlConnection connection(target_, database.name);
    auto loaded = load_snapshot(connection, database.name, store_.next_version(), problems);
    const auto previous = database.snapshot.load();
    const bool changed = !previous || !same_seeds(*previous, *loaded.snapshot);
    const std::size_t total = loaded.snapshot->statuses.size();
    database.publish(std::move(loaded.snapshot));
    if (changed && (previous || total > 0))
      log::info("seeds", "database \"" + database.name + "\": registry loaded, " +
                             std::to_string(loaded.active) + " of " + std::to_string(total) +
                             " seed(s) active or materialized");
    database.answer(answered, {});
  } catch (const std::exception& e) {
    problems = e.what();
    database.answer(answered, problems);
  }
  std::string& last = last_problems_[&database];
  if (problems != last && !problems.empty())
    log::error("seeds", "database \"" + database.name + "\": " + problems);
  last = problems;
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
    // Listen first, then load: a change committed in between is announced, not missed.
    listen(now);
    const bool periodic = now >= next_periodic;
    if (periodic) next_periodic = now + period_;
    reload_due(periodic);
    if (Clock::now() >= next_pending) {
      next_pending = Clock::now() + retry;
      chores_.retry_pending();
    }
    chores_.serve_ddl_seeds();

    // A database without a snapshot or a listener, or seeds waiting for one: try again soon.
    bool missing = chores_.pending();
    for (const SnapshotStore::Watched* d : store_.list())
      missing = missing || !d->snapshot.load() || !listening_[d].listener;
    sleep_until(missing ? std::min(next_periodic, Clock::now() + retry) : next_periodic);
  }
}

void RegistryWatcher::listen(Clock::time_point now) {
  for (SnapshotStore::Watched* d : store_.list()) {
    Listening& listening = listening_[d];
    if (listening.listener || now < listening.next_attempt) continue;
    try {
      listening.listener = std::make_unique<RegistryListener>(target_, d->name);
      listening.last_problem.clear();
      d->refresh_wanted = true;  // changes while it was down were not announced
    } catch (const std::exception& e) {
      listening.next_attempt = now + retry;
      if (e.what() != listening.last_problem) log::warning("seeds", e.what());
      listening.last_problem = e.what();
    }
  }
}

void RegistryWatcher::reload_due(bool periodic) {
  for (SnapshotStore::Watched* d : store_.list())
    if (d->refresh_wanted.exchange(false) || periodic || !d->snapshot.load()) reload(*d);
}

void RegistryWatcher::sleep_until(Clock::time_point deadline) {
  std::vector<pollfd> fds{pollfd{wake_fd_, POLLIN, 0}};
  std::vector<SnapshotStore::Watched*> polled;
  for (SnapshotStore::Watched* d : store_.list()) {
    const Listening& listening = listening_[d];
    if (!listening.listener) continue;
    fds.push_back(pollfd{listening.listener->socket(), POLLIN, 0});
    polled.push_back(d);
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  const int timeout = static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 60000));
  if (::poll(fds.data(), fds.size(), timeout) < 0) return;  // EINTR: the next round comes sooner
  if (fds[0].revents & POLLIN) {
    std::uint64_t count = 0;
    [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
  }
  for (std::size_t i = 0; i < polled.size(); ++i) {
    if (!fds[i + 1].revents) continue;
    SnapshotStore::Watched& d = *polled[i];
    Listening& listening = listening_[&d];
    try {
      if (listening.listener->drain()) d.refresh_wanted = true;
    } catch (const std::exception& e) {
      log::warning("seeds", std::string(e.what()) + "; reconnecting");
      listening.listener.reset();
      d.refresh_wanted = true;
    }
  }
}

}  // namespace seedproxy::seeds
