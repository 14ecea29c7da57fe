// Per-database snapshots of catalog and compiled seeds, refreshed on a control thread and read
// by sessions without locks (an atomic shared pointer per database).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "rewriter/catalog.hpp"
#include "rewriter/seed_set.hpp"
#include "seeds/control_connection.hpp"

namespace seedproxy::seeds {

// One seed as the registry holds it, for SHOW SEEDS and logs.
struct SeedStatus {
  std::string database, schema, table, attribute, type, expression, phase;
  bool cross_table = false;
  std::uint64_t reads_in_window = 0;
  std::string declared_by;
  std::string problem;  // e.g. why it is not active; empty when it is
};

struct DatabaseSnapshot {
  rewriter::Catalog catalog;
  rewriter::SeedSet seeds;
  std::uint64_t version = 0;  // distinct for every snapshot ever published by this process
};

// "schema.table" or "table" (schema public) with PostgreSQL's identifier folding; quoted parts
// keep their case. Returns false when `entity` is not of that shape.
[[nodiscard]] bool split_entity(std::string_view entity, std::string& schema, std::string& table);

// Seeds from the configuration, as the rewriter takes them.
[[nodiscard]] std::vector<rewriter::SeedDefinition> seed_definitions(
    const std::vector<config::SeedSpec>& seeds, std::string_view database);

class SnapshotRegistry {
 public:
  SnapshotRegistry(ControlTarget target, const std::vector<config::SeedSpec>& seeds,
                   double refresh_seconds);
  // `instance` is this proxy's name in the registry (config.instance).
  SnapshotRegistry(ControlTarget target, std::string instance, double refresh_seconds);
  SnapshotRegistry(const SnapshotRegistry&) = delete;
  SnapshotRegistry& operator=(const SnapshotRegistry&) = delete;
  ~SnapshotRegistry();

  // Loads every seeded database once (failures are logged and retried), then refreshes in the
  // background until destruction.
  void start();
  // Applies `seeds` once (refusals: logged, then std::runtime_error so the proxy does not start;
  // an unreachable database is logged and retried in the background), then follows the
  // registries in the background until destruction.
  void start(const std::vector<config::SeedSpec>& seeds);

  // Validates and applies a configuration's seeds (blocking: libpq on the calling thread; never
  // call it on an I/O thread). Returns every refusal/conflict as a sentence; when non-empty
  // nothing was changed anywhere.
  [[nodiscard]] std::vector<std::string> apply_seeds(const std::vector<config::SeedSpec>& seeds);
  // Every seed of every watched database, from the newest snapshots (non-blocking, any thread).
  [[nodiscard]] std::vector<SeedStatus> seed_statuses() const;

  // Whether sessions to `database` need the resolver at all.
  [[nodiscard]] bool covers(std::string_view database) const noexcept;
  // The newest snapshot, or null while none could be loaded yet.
  [[nodiscard]] std::shared_ptr<const DatabaseSnapshot> current(
      std::string_view database) const noexcept;
  // Asks for a reload soon (DDL was seen); never blocks the caller. Returns a ticket that
  // refreshed() accepts once a snapshot loaded after this request is published.
  std::uint64_t request_refresh(std::string_view database) noexcept;
  [[nodiscard]] bool refreshed(std::string_view database, std::uint64_t ticket) const noexcept;

 private:
  struct Database {
    std::string name;
    std::vector<rewriter::SeedDefinition> seeds;
    std::atomic<std::shared_ptr<const DatabaseSnapshot>> snapshot;
    std::atomic<bool> refresh_wanted{true};
    std::atomic<std::uint64_t> requested{0};  // tickets handed out
    std::atomic<std::uint64_t> completed{0};  // highest ticket a published snapshot covers
    std::string last_problems;  // control thread only: log a problem once, not every refresh
  };

  [[nodiscard]] Database* find(std::string_view database) const noexcept;
  void refresh(Database& database);
  void run();

  ControlTarget target_;
  std::string instance_;
  double refresh_seconds_;
  std::vector<std::unique_ptr<Database>> databases_;  // fixed after construction
  std::atomic<std::uint64_t> next_version_{1};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace seedproxy::seeds
