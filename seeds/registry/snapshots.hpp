// Per-database snapshots of catalog and compiled seeds, built from each database's seed registry
// (the `seedproxy` schema) on a control thread and read by sessions without locks (an atomic
// shared pointer per database). The control thread also LISTENs for registry changes made by
// other proxies and applies the configuration's seeds to the registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config/config.hpp"
#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/registry/ddl_seed_request.hpp"
#include "seeds/registry/snapshot_source.hpp"

namespace seedproxy::seeds {

class RegistryListener;

// One seed as the registry holds it, for SHOW SEEDS and logs.
struct SeedStatus {
  std::string database, schema, table, attribute, type, expression, phase;
  bool cross_table = false;
  std::uint64_t reads_in_window = 0;
  std::string declared_by;
  std::string problem;  // e.g. why it is not active; empty when it is
};

struct DatabaseSnapshot {
  rewriter::Catalog catalog;  // empty while the database has no active seed
  rewriter::SeedSet seeds;
  std::vector<SeedStatus> statuses;  // every registry row, rolled-back ones included
  bool registry = false;             // the database has a `seedproxy` schema
  std::uint64_t version = 0;         // distinct for every snapshot ever published by this process
};

// Whether a database can be watched at all: not the admin console's "seedproxy", not a template.
[[nodiscard]] bool watchable_database(std::string_view database) noexcept;

class SnapshotRegistry : public SnapshotSource {
 public:
  // `instance` is this proxy's name in the registry (config.instance).
  SnapshotRegistry(ControlTarget target, std::string instance, double refresh_seconds);
  SnapshotRegistry(const SnapshotRegistry&) = delete;
  SnapshotRegistry& operator=(const SnapshotRegistry&) = delete;
  ~SnapshotRegistry() override;

  // Applies `seeds` to the registries once (like apply_seeds), loads every database they name,
  // then follows the registries in the background until destruction. Refused seeds are logged
  // and std::runtime_error is thrown (the proxy must not start); a database that cannot be
  // reached is logged and its seeds are applied in the background once it can.
  void start(const std::vector<config::SeedSpec>& seeds);

  // Validates and applies a configuration's seeds (blocking: libpq on the calling thread; never
  // call it on an I/O thread). Returns every refusal/conflict as a sentence; when non-empty
  // nothing was changed anywhere.
  [[nodiscard]] std::vector<std::string> apply_seeds(const std::vector<config::SeedSpec>& seeds);

  // Every seed of every watched database, from the newest snapshots (non-blocking, any thread).
  [[nodiscard]] std::vector<SeedStatus> seed_statuses() const;
  // The watched databases whose newest snapshot found a registry (non-blocking, any thread).
  [[nodiscard]] std::vector<std::string> databases_with_registry() const;
  // Why the newest attempt to read a watched database's registry failed (the first such
  // database), or empty when every newest attempt succeeded. For /health; any thread.
  [[nodiscard]] std::string read_failure() const;

  // Whether sessions to `database` need the resolver at all (every watchable database: seeds
  // may be registered by another proxy at any time).
  [[nodiscard]] bool covers(std::string_view database) const noexcept override;
  // Starts following `database` if it is not followed yet. Returns 0 when a snapshot is already
  // published, otherwise a ticket for refreshed() that is answered by the first load.
  std::uint64_t watch(std::string_view database) noexcept override;
  // The newest snapshot, or null while none could be loaded yet.
  [[nodiscard]] std::shared_ptr<const DatabaseSnapshot> current(
      std::string_view database) const noexcept override;
  // Asks for a reload soon (DDL was seen); never blocks the caller. Returns a ticket that
  // refreshed() accepts once a snapshot loaded after this request is published.
  std::uint64_t request_refresh(std::string_view database) noexcept override;
  [[nodiscard]] bool refreshed(std::string_view database,
                               std::uint64_t ticket) const noexcept override;

  // DDL seeds: hands `job` to the control thread, which runs register_ddl_seed_now() and then
  // sets job->done. Never blocks; a job submitted while stopping is never answered.
  void submit_ddl_seed(std::shared_ptr<DdlSeedJob> job) override;
  // Validates one DDL seed and registers it, published in this proxy's snapshot before returning
  // (blocking: libpq on the calling thread; never call it on an I/O thread).
  [[nodiscard]] DdlSeedVerdict register_ddl_seed_now(const DdlSeedRequest& request);

 private:
  struct Database;
  using DatabaseList = std::vector<Database*>;

  [[nodiscard]] Database* find(std::string_view database) const noexcept;
  Database* find_or_add(std::string_view database);
  void wake() noexcept;
  void refresh(Database& database);
  void run();
  void serve_ddl_seeds();  // control thread: answers the queued DDL seed jobs
  enum class Mode { reload, start, retry };
  [[nodiscard]] std::vector<std::string> apply(const std::vector<config::SeedSpec>& seeds,
                                               Mode mode);

  ControlTarget target_;
  std::string instance_;
  double refresh_seconds_;
  std::mutex add_mutex_;                          // guards owned_ and pending_
  std::vector<std::unique_ptr<Database>> owned_;  // never shrinks: pointers stay valid
  // The current list, immutable, replaced on add; read with one plain atomic load (no reference
  // count traffic on the hot path). Replaced lists are kept until destruction (one per database).
  std::atomic<const DatabaseList*> list_;
  std::vector<std::unique_ptr<const DatabaseList>> lists_;  // guarded by add_mutex_
  std::vector<config::SeedSpec> pending_;              // seeds of databases unreachable at start
  std::vector<std::shared_ptr<DdlSeedJob>> ddl_jobs_;  // DDL seeds to register; add_mutex_
  std::mutex apply_mutex_;                             // one application at a time
  std::mutex refresh_mutex_;  // refresh() runs on the control thread, or in apply() after a change
  std::atomic<std::uint64_t> next_version_{1};
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // eventfd: sessions and the destructor wake the control thread
  std::thread thread_;
};

}  // namespace seedproxy::seeds
