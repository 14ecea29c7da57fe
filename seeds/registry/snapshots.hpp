// SnapshotRegistry: the facade through which the proxy reaches the seed registries and snapshots.
//
// Per-database snapshots that sessions read without locks (snapshot_store.hpp), kept fresh by the
// registry watcher's thread (registry_watcher.hpp), which also applies the configuration's seeds
// (seed_applier.hpp) and registers DDL seeds (ddl_seed_queue.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/registry/ddl_seed_queue.hpp"
#include "seeds/registry/ddl_seed_request.hpp"
#include "seeds/registry/registry_watcher.hpp"
#include "seeds/registry/seed_applier.hpp"
#include "seeds/registry/snapshot_source.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

class SnapshotRegistry : public SnapshotSource {
 public:
  // `fleet.instance` is this proxy's name in the registry (config.instance).
  // `validation`: the limits every seed is validated under (config.validation).
  SnapshotRegistry(ControlTarget target, FleetSettings fleet, double refresh_seconds,
                   config::Validation validation = {});
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
  // Why the newest attempt to read the registry of a database that matters failed (the first
  // such database), or empty when every one succeeded: the databases `configured` names and
  // those whose registry was read before; not names clients merely asked for. For /health; any
  // thread.
  [[nodiscard]] std::string read_failure(std::span<const std::string> configured) const;

  // Whether sessions to `database` need the resolver at all (every watchable database: seeds
  // may be registered by another proxy at any time).
  [[nodiscard]] bool covers(std::string_view database) const noexcept override;
  // Starts following `database` if it is not followed yet. Returns 0 when a snapshot is already
  // published, otherwise a ticket for refreshed() that is answered by the first load.
  std::uint64_t watch(std::string_view database) noexcept override;
  void unwatch(std::string_view database) noexcept override;
  // The newest snapshot, or null while none could be loaded yet.
  [[nodiscard]] std::shared_ptr<const DatabaseSnapshot> current(
      std::string_view database) const noexcept override;
  // Asks for a reload soon (DDL was seen); never blocks the caller. Returns a ticket that
  // refreshed() accepts once a snapshot loaded after this request is published.
  std::uint64_t request_refresh(std::string_view database) noexcept override;
  std::uint64_t request_refresh(std::string_view database, const rewriter::CatalogEffect& effect,
                                bool confirm_only) noexcept override;
  [[nodiscard]] bool trusted(std::string_view database) const noexcept override;
  [[nodiscard]] std::uint64_t next_version() noexcept override { return store_.next_version(); }
  [[nodiscard]] SnapshotTrust trust(std::string_view database) const override;
  // Databases the materialization engine works in (a registry, a live seed, not released).
  [[nodiscard]] std::vector<std::string> databases_with_live_seeds() const;
  // Lets `database` go (admin KILL): no registry connection, no heartbeat row, until a session
  // to it begins. `done` is completed once the connection is closed. Never blocks.
  void release(std::string_view database, std::shared_ptr<Completion> done);
  [[nodiscard]] bool released(std::string_view database) const noexcept;
  [[nodiscard]] bool refreshed(std::string_view database,
                               std::uint64_t ticket) const noexcept override;
  [[nodiscard]] std::uint64_t outstanding(std::string_view database) const noexcept override;
  [[nodiscard]] bool settled(std::string_view database) const noexcept override;
  [[nodiscard]] boost::asio::awaitable<bool> wait_refreshed(
      std::string database, std::uint64_t ticket,
      std::chrono::steady_clock::duration timeout) override;
  // The same for a plain thread (the materialization engine's), blocking it.
  [[nodiscard]] bool wait_refreshed_blocking(std::string_view database, std::uint64_t ticket,
                                             std::chrono::steady_clock::duration timeout);

  // DDL seeds: hands `job` to the control thread, which runs register_ddl_seed_now() and then
  // sets job->done. Never blocks; a job submitted while stopping is never answered.
  void submit_ddl_seed(std::shared_ptr<DdlSeedJob> job) override;
  // Validates one DDL seed and registers it, published in this proxy's snapshot before returning
  // (blocking: libpq on the calling thread; never call it on an I/O thread).
  [[nodiscard]] DdlSeedVerdict register_ddl_seed_now(const DdlSeedRequest& request);

 private:
  std::mutex changes_;  // one registry change at a time: the applier's or a DDL seed's
  SnapshotStore store_;
  RegistryWatcher watcher_;
  SeedApplier applier_;
  DdlSeedQueue ddl_seeds_;
};

}  // namespace seedproxy::seeds
