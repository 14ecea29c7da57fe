// Building, publishing and refreshing per-database snapshots from the seed registry; following
// the registries (LISTEN/NOTIFY plus a periodic refresh) and applying the configuration's seeds.
#include "seeds/registry/snapshots.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <stdexcept>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "seeds/control/catalog_loader.hpp"
#include "seeds/registry/registry.hpp"
#include "seeds/registry/registry_listener.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/validate/validator.hpp"

namespace seedproxy::seeds {

using Clock = std::chrono::steady_clock;

struct SnapshotRegistry::Database {
  std::string name;
  std::atomic<std::shared_ptr<const DatabaseSnapshot>> snapshot;
  std::atomic<bool> refresh_wanted{true};
  std::atomic<std::uint64_t> requested{0};  // tickets handed out
  std::atomic<std::uint64_t> completed{0};  // highest ticket a published snapshot covers
  // Control thread only:
  std::unique_ptr<RegistryListener> listener;
  Clock::time_point next_listen_attempt{};
  std::string last_problems;  // log a problem once, not every refresh
  std::string last_listen_problem;
  mutable std::mutex failure_mutex;  // guards read_failure
  std::string read_failure;          // why the newest refresh failed; empty when it succeeded
};

namespace {

rewriter::Phase phase_of(std::string_view phase) {
  if (phase == "materializing") return rewriter::Phase::materializing;
  if (phase == "materialized") return rewriter::Phase::materialized;
  if (phase == "rolled_back") return rewriter::Phase::rolled_back;
  return rewriter::Phase::virtual_;
}

}  // namespace

bool watchable_database(std::string_view database) noexcept {
  return !database.empty() && database != "seedproxy" && database != "template0" &&
         database != "template1";
}

SnapshotRegistry::SnapshotRegistry(ControlTarget target, std::string instance,
                                   double refresh_seconds)
    : target_(std::move(target)),
      instance_(std::move(instance)),
      refresh_seconds_(refresh_seconds),
      list_(nullptr),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  if (wake_fd_ < 0) throw std::runtime_error("cannot create the seed registry's wake-up eventfd");
  lists_.push_back(std::make_unique<const DatabaseList>());
  list_.store(lists_.back().get(), std::memory_order_release);
}

SnapshotRegistry::~SnapshotRegistry() {
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

void SnapshotRegistry::wake() noexcept {
  const std::uint64_t one = 1;
  // A full counter (never in practice) already means "wake up"; nothing to handle.
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
}

SnapshotRegistry::Database* SnapshotRegistry::find(std::string_view database) const noexcept {
  for (Database* d : *list_.load(std::memory_order_acquire))
    if (d->name == database) return d;
  return nullptr;
}

SnapshotRegistry::Database* SnapshotRegistry::find_or_add(std::string_view database) {
  if (Database* d = find(database)) return d;
  std::lock_guard lock(add_mutex_);
  if (Database* d = find(database)) return d;
  auto added = std::make_unique<Database>();
  added->name = std::string(database);
  auto list = std::make_unique<DatabaseList>(*list_.load());
  list->push_back(added.get());
  owned_.push_back(std::move(added));
  lists_.push_back(std::move(list));
  list_.store(lists_.back().get(), std::memory_order_release);
  wake();
  return owned_.back().get();
}

bool SnapshotRegistry::covers(std::string_view database) const noexcept {
  return watchable_database(database);
}

std::uint64_t SnapshotRegistry::watch(std::string_view database) noexcept {
  if (!watchable_database(database)) return 0;
  Database* d = find(database);
  if (d && d->snapshot.load(std::memory_order_acquire)) return 0;
  try {
    if (!d) d = find_or_add(database);
  } catch (...) {
    return 0;  // out of memory: the session goes on without waiting
  }
  return request_refresh(database);
}

std::shared_ptr<const DatabaseSnapshot> SnapshotRegistry::current(
    std::string_view database) const noexcept {
  const Database* d = find(database);
  return d ? d->snapshot.load(std::memory_order_acquire) : nullptr;
}

std::uint64_t SnapshotRegistry::request_refresh(std::string_view database) noexcept {
  Database* d = find(database);
  if (!d) return 0;
  const std::uint64_t ticket = d->requested.fetch_add(1) + 1;
  if (!d->refresh_wanted.exchange(true)) wake();
  return ticket;
}

bool SnapshotRegistry::refreshed(std::string_view database, std::uint64_t ticket) const noexcept {
  const Database* d = find(database);
  return !d || d->completed.load(std::memory_order_acquire) >= ticket;
}

std::vector<SeedStatus> SnapshotRegistry::seed_statuses() const {
  std::vector<SeedStatus> out;
  for (const Database* d : *list_.load(std::memory_order_acquire))
    if (const auto snapshot = d->snapshot.load(std::memory_order_acquire))
      out.insert(out.end(), snapshot->statuses.begin(), snapshot->statuses.end());
  return out;
}

std::vector<std::string> SnapshotRegistry::databases_with_registry() const {
  std::vector<std::string> out;
  for (const Database* d : *list_.load(std::memory_order_acquire))
    if (const auto snapshot = d->snapshot.load(std::memory_order_acquire);
        snapshot && snapshot->registry)
      out.push_back(d->name);
  return out;
}

std::string SnapshotRegistry::read_failure() const {
  for (const Database* d : *list_.load(std::memory_order_acquire)) {
    std::lock_guard lock(d->failure_mutex);
    if (!d->read_failure.empty()) return "database \"" + d->name + "\": " + d->read_failure;
  }
  return {};
}

void SnapshotRegistry::refresh(Database& database) {
  std::lock_guard serial(refresh_mutex_);
  // Every request made before the registry is read is answered by this snapshot.
  const std::uint64_t answered = database.requested.load();
  std::string problems;
  try {
    ControlConnection connection(target_, database.name);
    auto snapshot = std::make_shared<DatabaseSnapshot>();
    snapshot->version = next_version_.fetch_add(1);
    std::vector<RegistrySeed> rows;
    if (registry_version(connection) > 0) {
      snapshot->registry = true;
      rows = read_registry(connection);
    }
    std::vector<rewriter::SeedDefinition> definitions;
    for (const auto& row : rows) {
      const auto phase = phase_of(row.phase);
      SeedStatus status{database.name,
                        row.schema,
                        row.table,
                        row.attribute,
                        row.type,
                        row.expression,
                        row.phase,
                        row.cross_table,
                        row.reads_in_window,
                        row.declared_by,
                        ""};
      if (phase == rewriter::Phase::rolled_back)
        status.problem = "rolled back: unknown to clients";
      else
        definitions.push_back(
            {row.schema, row.table, row.attribute, row.type, row.expression, phase});
      snapshot->statuses.push_back(std::move(status));
    }
    // Without an active seed the catalog is not needed: nothing is rewritten.
    if (!definitions.empty()) {
      snapshot->catalog = load_catalog(connection, snapshot->version);
      std::vector<std::string> errors;
      snapshot->seeds =
          rewriter::SeedSet::compile(definitions, snapshot->catalog, snapshot->version, errors);
      for (const auto& error : errors) {
        problems += "seed " + error + "; ";
        for (auto& status : snapshot->statuses) {
          const std::string name = status.schema + "." + status.table + "." + status.attribute;
          if (error.compare(0, name.size() + 2, name + ": ") == 0)
            status.problem = "not active: " + error.substr(name.size() + 2);
        }
      }
    }
    const auto previous = database.snapshot.load();
    const bool changed = !previous || previous->statuses.size() != snapshot->statuses.size() ||
                         !std::equal(previous->statuses.begin(), previous->statuses.end(),
                                     snapshot->statuses.begin(), [](const auto& a, const auto& b) {
                                       return a.schema == b.schema && a.table == b.table &&
                                              a.attribute == b.attribute && a.type == b.type &&
                                              a.expression == b.expression && a.phase == b.phase;
                                     });
    const std::size_t active = definitions.size();
    const std::size_t total = snapshot->statuses.size();
    database.snapshot.store(std::move(snapshot), std::memory_order_release);
    if (changed && (previous || total > 0))
      log::info("seeds", "database \"" + database.name + "\": registry loaded, " +
                             std::to_string(active) + " of " + std::to_string(total) +
                             " seed(s) active or materialized");
    std::lock_guard lock(database.failure_mutex);
    database.read_failure.clear();
  } catch (const std::exception& e) {
    problems = e.what();
    std::lock_guard lock(database.failure_mutex);
    database.read_failure = problems;
  }
  // Answered even on failure: sessions waiting for it go on with the snapshot they have.
  database.completed.store(answered, std::memory_order_release);
  if (problems != database.last_problems && !problems.empty())
    log::error("seeds", "database \"" + database.name + "\": " + problems);
  database.last_problems = problems;
}

std::vector<std::string> SnapshotRegistry::apply_seeds(const std::vector<config::SeedSpec>& seeds) {
  return apply(seeds, Mode::reload);
}

std::vector<std::string> SnapshotRegistry::apply(const std::vector<config::SeedSpec>& seeds,
                                                 Mode mode) {
  std::lock_guard serial(apply_mutex_);
  std::map<std::string, std::vector<const config::SeedSpec*>> by_database;
  for (const auto& seed : seeds) by_database[seed.database].push_back(&seed);
  // Databases this instance may have declared seeds in before: its withdrawn declarations go.
  if (mode != Mode::retry)
    for (const Database* d : *list_.load())
      if (const auto snapshot = d->snapshot.load(); snapshot && snapshot->registry)
        by_database.try_emplace(d->name);

  struct Work {
    std::string database;
    std::unique_ptr<ControlConnection> connection;
    std::vector<DeclaredSeed> declared;
    bool locked = false;
  };
  std::vector<Work> work;  // in database-name order: proxies lock registries in the same order
  std::vector<std::string> refusals;
  std::vector<config::SeedSpec> unreachable;
  for (const auto& [database, specs] : by_database) {
    if (!watchable_database(database)) {
      refusals.push_back("database \"" + database +
                         "\" cannot hold seeds (it is the admin console's name or a template)");
      continue;
    }
    Work item{database, nullptr, {}};
    try {
      item.connection = std::make_unique<ControlConnection>(target_, database);
    } catch (const std::exception& e) {
      if (mode == Mode::reload || specs.empty()) {
        if (!specs.empty())
          refusals.push_back("cannot apply the seeds of database \"" + database +
                             "\": " + e.what());
        continue;
      }
      log::error("seeds", std::string(e.what()) + "; its " + std::to_string(specs.size()) +
                              " seed(s) are applied once it can be reached");
      for (const auto* spec : specs) unreachable.push_back(*spec);
      continue;
    }
    // Seeds the registry has materializing or materialized have their column already: the
    // validator must expect it rather than refuse it as a physical column.
    std::vector<RegistrySeed> registered;
    try {
      if (!specs.empty() && registry_version(*item.connection) > 0)
        registered = read_registry(*item.connection);
    } catch (const std::exception& e) {
      refusals.push_back("cannot read the seed registry of database \"" + database +
                         "\": " + e.what());
    }
    for (const auto* spec : specs) {
      ValidationOptions options;
      std::string schema, table;
      if (pg::split_entity(spec->entity, schema, table))
        for (const auto& row : registered)
          if (row.schema == schema && row.table == table && row.attribute == spec->attribute &&
              (row.phase == "materializing" || row.phase == "materialized"))
            options.column_added_by_proxy = true;
      try {
        auto verdict = validate_seed(*item.connection, *spec, options);
        if (auto* refusal = std::get_if<Refusal>(&verdict))
          refusals.push_back(refusal->message);
        else
          item.declared.push_back({*spec, std::get<ValidatedSeed>(std::move(verdict))});
      } catch (const std::exception& e) {
        refusals.push_back("cannot validate seed " + seed_name(*spec) + ": " + e.what());
      }
    }
    work.push_back(std::move(item));
  }
  const auto rollback_all = [&] {
    for (auto& item : work) {
      try {
        if (item.connection->in_transaction())
          (void)item.connection->query("rolling back the seed registry change", "ROLLBACK");
        if (item.locked) unlock_registry(*item.connection);
      } catch (const std::exception& e) {
        log::warning("seeds", e.what());
      }
    }
  };
  std::vector<std::string> notify;
  if (refusals.empty()) {
    for (auto& item : work) {
      try {
        const bool has_registry = registry_version(*item.connection) > 0;
        // Nothing to declare and no registry: leave the database untouched.
        if (item.declared.empty() && !has_registry) continue;
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
                                       "SELECT pg_notify($1, $2)",
                                       {registry_channel, item.database});
          notify.push_back(item.database);
        }
      } catch (const std::exception& e) {
        refusals.push_back("cannot apply the seeds of database \"" + item.database +
                           "\": " + e.what());
      }
    }
  }
  if (!refusals.empty()) {
    rollback_all();
    return refusals;
  }
  for (auto& item : work) {
    try {
      if (item.connection->in_transaction())
        (void)item.connection->query("committing the seed registry change", "COMMIT");
      if (item.locked) unlock_registry(*item.connection);
    } catch (const std::exception& e) {
      // The earlier databases are committed already; say so plainly.
      refusals.push_back("committing the seeds of database \"" + item.database +
                         "\" failed (databases before it in name order were changed): " + e.what());
    }
  }
  // Published before returning, so seed_statuses() right after a reload shows the new seeds.
  for (const auto& item : work) {
    if (!item.declared.empty() ||
        std::find(notify.begin(), notify.end(), item.database) != notify.end())
      refresh(*find_or_add(item.database));
  }
  if (mode != Mode::retry) {
    std::lock_guard lock(add_mutex_);
    pending_ = std::move(unreachable);
  } else if (!unreachable.empty()) {
    std::lock_guard lock(add_mutex_);
    pending_.insert(pending_.end(), unreachable.begin(), unreachable.end());
  }
  for (const auto& spec : seeds) (void)find_or_add(spec.database);
  return refusals;
}

void SnapshotRegistry::start(const std::vector<config::SeedSpec>& seeds) {
  auto refusals = apply(seeds, Mode::start);
  if (!refusals.empty()) {
    for (const auto& refusal : refusals) log::error("seeds", refusal);
    throw std::runtime_error(
        std::to_string(refusals.size()) +
        " seed(s) of the configuration were refused, so the proxy does not start; first: " +
        refusals.front());
  }
  // The first snapshot of every configured database before clients arrive.
  for (Database* d : *list_.load()) {
    d->refresh_wanted = false;
    if (!d->snapshot.load()) refresh(*d);
  }
  thread_ = std::thread([this] { run(); });
}

void SnapshotRegistry::run() {
  const auto period =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(refresh_seconds_));
  const auto retry = std::chrono::seconds(1);
  auto next_periodic = Clock::now() + period;
  auto next_pending = Clock::now() + retry;
  std::vector<pollfd> fds;
  std::vector<Database*> polled;
  while (!stopping_) {
    const DatabaseList* list = list_.load(std::memory_order_acquire);
    const auto now = Clock::now();
    // Listen first, then load: a change committed in between is announced, not missed.
    for (Database* d : *list) {
      if (d->listener || now < d->next_listen_attempt) continue;
      try {
        d->listener = std::make_unique<RegistryListener>(target_, d->name);
        d->last_listen_problem.clear();
        d->refresh_wanted = true;  // changes while it was down were not announced
      } catch (const std::exception& e) {
        d->next_listen_attempt = now + retry;
        if (e.what() != d->last_listen_problem) log::warning("seeds", e.what());
        d->last_listen_problem = e.what();
      }
    }
    const bool periodic = now >= next_periodic;
    if (periodic) next_periodic = now + period;
    for (Database* d : *list)
      if (d->refresh_wanted.exchange(false) || periodic || !d->snapshot.load()) refresh(*d);
    if (Clock::now() >= next_pending) {
      next_pending = Clock::now() + retry;
      std::vector<config::SeedSpec> pending;
      {
        std::lock_guard lock(add_mutex_);
        pending.swap(pending_);
      }
      if (!pending.empty())
        for (const auto& refusal : apply(pending, Mode::retry)) log::error("seeds", refusal);
    }
    serve_ddl_seeds();

    // Sleep until a session asks, a notification arrives, or a timer is due.
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    polled.clear();
    bool missing = false;
    for (Database* d : *list) {
      if (!d->snapshot.load() || !d->listener) missing = true;
      if (!d->listener) continue;
      fds.push_back(pollfd{d->listener->socket(), POLLIN, 0});
      polled.push_back(d);
    }
    {
      std::lock_guard lock(add_mutex_);
      if (!pending_.empty()) missing = true;
    }
    auto deadline = next_periodic;
    if (missing) deadline = std::min(deadline, Clock::now() + retry);
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    const int timeout = static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 60000));
    if (::poll(fds.data(), fds.size(), timeout) < 0) continue;  // EINTR
    if (fds[0].revents & POLLIN) {
      std::uint64_t count = 0;
      [[maybe_unused]] const auto n = ::read(wake_fd_, &count, sizeof count);
    }
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (!fds[i + 1].revents) continue;
      Database& d = *polled[i];
      try {
        if (d.listener->drain()) d.refresh_wanted = true;
      } catch (const std::exception& e) {
        log::warning("seeds", std::string(e.what()) + "; reconnecting");
        d.listener.reset();
        d.refresh_wanted = true;
      }
    }
  }
}

}  // namespace seedproxy::seeds
