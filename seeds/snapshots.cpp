// Building, publishing and periodically refreshing per-database snapshots.
#include "seeds/snapshots.hpp"

#include <algorithm>
#include <chrono>

#include "proxy/log.hpp"
#include "seeds/catalog_loader.hpp"

namespace seedproxy::seeds {

bool split_entity(std::string_view entity, std::string& schema, std::string& table) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  bool part_was_quoted = false;
  for (std::size_t i = 0; i < entity.size(); ++i) {
    const char c = entity[i];
    if (c == '"') {
      if (quoted && i + 1 < entity.size() && entity[i + 1] == '"') {
        parts.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
        part_was_quoted = true;
      }
    } else if (c == '.' && !quoted) {
      if (parts.back().empty()) return false;
      parts.emplace_back();
      part_was_quoted = false;
    } else {
      parts.back() += (quoted || part_was_quoted || c < 'A' || c > 'Z') ? c : char(c - 'A' + 'a');
    }
  }
  if (quoted || parts.size() > 2 || parts.back().empty()) return false;
  schema = parts.size() == 2 ? parts[0] : "public";
  table = parts.back();
  return true;
}

std::vector<rewriter::SeedDefinition> seed_definitions(const std::vector<config::SeedSpec>& seeds,
                                                       std::string_view database) {
  std::vector<rewriter::SeedDefinition> out;
  for (const auto& seed : seeds) {
    if (seed.database != database) continue;
    rewriter::SeedDefinition definition;
    if (!split_entity(seed.entity, definition.schema, definition.table)) continue;
    definition.attribute = seed.attribute;
    definition.type = seed.type;
    definition.expression = seed.expression;
    definition.phase = rewriter::Phase::virtual_;
    out.push_back(std::move(definition));
  }
  return out;
}

SnapshotRegistry::SnapshotRegistry(ControlTarget target, const std::vector<config::SeedSpec>& seeds,
                                   double refresh_seconds)
    : target_(std::move(target)), refresh_seconds_(refresh_seconds) {
  for (const auto& seed : seeds) {
    if (find(seed.database)) continue;
    auto database = std::make_unique<Database>();
    database->name = seed.database;
    database->seeds = seed_definitions(seeds, seed.database);
    databases_.push_back(std::move(database));
  }
}

// Transitional bodies: the registry API's shape, before the registry itself lands.
SnapshotRegistry::SnapshotRegistry(ControlTarget target, std::string instance,
                                   double refresh_seconds)
    : target_(std::move(target)),
      instance_(std::move(instance)),
      refresh_seconds_(refresh_seconds) {}

void SnapshotRegistry::start(const std::vector<config::SeedSpec>&) { start(); }

std::vector<std::string> SnapshotRegistry::apply_seeds(const std::vector<config::SeedSpec>&) {
  return {};
}

std::vector<SeedStatus> SnapshotRegistry::seed_statuses() const {
  std::vector<SeedStatus> out;
  for (const auto& d : databases_)
    for (const auto& seed : d->seeds)
      out.push_back({d->name, seed.schema, seed.table, seed.attribute, seed.type, seed.expression,
                     std::string(rewriter::to_string(seed.phase)), false, 0, instance_, ""});
  return out;
}

SnapshotRegistry::~SnapshotRegistry() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

SnapshotRegistry::Database* SnapshotRegistry::find(std::string_view database) const noexcept {
  for (const auto& d : databases_)
    if (d->name == database) return d.get();
  return nullptr;
}

bool SnapshotRegistry::covers(std::string_view database) const noexcept {
  return find(database) != nullptr;
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
  if (!d->refresh_wanted.exchange(true)) wake_.notify_all();
  return ticket;
}

bool SnapshotRegistry::refreshed(std::string_view database, std::uint64_t ticket) const noexcept {
  const Database* d = find(database);
  return !d || d->completed.load(std::memory_order_acquire) >= ticket;
}

void SnapshotRegistry::refresh(Database& database) {
  // Every request made before the catalog query starts is answered by this snapshot.
  const std::uint64_t answered = database.requested.load();
  std::string problems;
  try {
    ControlConnection connection(target_, database.name);
    auto snapshot = std::make_shared<DatabaseSnapshot>();
    snapshot->version = next_version_.fetch_add(1);
    snapshot->catalog = load_catalog(connection, snapshot->version);
    std::vector<std::string> errors;
    snapshot->seeds =
        rewriter::SeedSet::compile(database.seeds, snapshot->catalog, snapshot->version, errors);
    for (const auto& error : errors) problems += "seed " + error + "; ";
    const bool first = !database.snapshot.load();
    database.snapshot.store(std::move(snapshot), std::memory_order_release);
    if (first)
      log::info("seeds", "database \"" + database.name + "\": catalog loaded, " +
                             std::to_string(database.seeds.size() - errors.size()) + " of " +
                             std::to_string(database.seeds.size()) + " seed(s) active");
  } catch (const std::exception& e) {
    problems = e.what();
  }
  // Answered even on failure: sessions waiting for it go on with the snapshot they have.
  database.completed.store(answered, std::memory_order_release);
  if (problems != database.last_problems && !problems.empty())
    log::error("seeds", "database \"" + database.name + "\": " + problems);
  database.last_problems = problems;
}

void SnapshotRegistry::start() {
  for (auto& database : databases_) {
    database->refresh_wanted = false;
    refresh(*database);
  }
  if (!databases_.empty()) thread_ = std::thread([this] { run(); });
}

void SnapshotRegistry::run() {
  using clock = std::chrono::steady_clock;
  const auto period =
      std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(refresh_seconds_));
  auto next_periodic = clock::now() + period;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      // Databases that have never loaded are retried every second.
      const bool missing = std::any_of(databases_.begin(), databases_.end(),
                                       [](const auto& d) { return !d->snapshot.load(); });
      const auto deadline =
          missing ? std::min(next_periodic, clock::now() + std::chrono::seconds(1)) : next_periodic;
      wake_.wait_until(lock, deadline, [this] {
        return stopping_ || std::any_of(databases_.begin(), databases_.end(),
                                        [](const auto& d) { return d->refresh_wanted.load(); });
      });
      if (stopping_) return;
    }
    const bool periodic = clock::now() >= next_periodic;
    if (periodic) next_periodic = clock::now() + period;
    for (auto& database : databases_)
      if (database->refresh_wanted.exchange(false) || periodic || !database->snapshot.load())
        refresh(*database);
  }
}

}  // namespace seedproxy::seeds
