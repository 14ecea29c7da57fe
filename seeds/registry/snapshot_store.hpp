// The snapshot store: per-database snapshots that sessions read without locks, and refresh tickets.
//
// The newest immutable snapshot of catalog and compiled seeds sits behind an atomic pointer; a
// ticket tells a session when a refresh it asked for has been published.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/progress_signal.hpp"
#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "rewriter/statements/catalog_effect.hpp"

namespace seedproxy::seeds {

// One seed as the registry holds it, for SHOW SEEDS and logs.
struct SeedStatus {
  std::string database, schema, table, attribute, type, expression;
  rewriter::Phase phase = rewriter::Phase::virtual_;
  bool cross_table = false;
  std::uint64_t reads_in_window = 0;
  std::string declared_by;
  std::string problem;  // e.g. why it is not active, and what to do; empty when it is
  // The registry has it live (virtual … materialized) but this proxy does not serve it: its
  // definition does not compile against the catalog, or a column of its name appeared upstream
  // that seedproxy did not add. `problem` says which.
  bool inactive = false;
  rewriter::SeedPlace place;        // where clients see it among its table's columns
  std::string dependencies;         // cross-table: which seed rows a change to each table affects
  std::string materialize_refusal;  // why it cannot be materialized (it stays virtual)
  std::string dependency_error;     // DDL broke what it reads, and what to do; empty when not
  bool dependency_broken = false;   // dependency_error is set
};

struct DatabaseSnapshot {
  rewriter::Catalog catalog;  // empty while the database has no active seed
  rewriter::SeedSet seeds;
  std::vector<SeedStatus> statuses;  // every registry row, rolled-back ones included
  bool registry = false;             // the database has a `seedproxy` schema
  // Some seed is not rolled back (compiled or not): the catalog was loaded, and DDL matters.
  bool active = false;
  std::uint64_t version = 0;  // distinct for every snapshot ever published by this process
  // The registry's change version the seeds were read at (0: no change counter there).
  std::uint64_t registry_change = 0;
};

// Whether a session may serve statements that touch seeds from a database's snapshot, and why not.
struct SnapshotTrust {
  bool trusted = true;
  double seconds_untrusted = 0;  // since the lease ran out
  std::string why;               // the newest failure to reach the registry, if any
};

class SnapshotStore {
 public:
  using Clock = std::chrono::steady_clock;
  // trusted_until when no lease applies (no registry, or one without heartbeat rows).
  static constexpr std::int64_t trusted_always = std::numeric_limits<std::int64_t>::max();

  // One watched database. Sessions read `snapshot`; a refresh request takes a ticket from
  // `requested`, and the snapshot that answers it raises `completed` to at least that ticket.
  struct Watched {
    std::string name;
    std::atomic<std::shared_ptr<const DatabaseSnapshot>> snapshot;
    std::atomic<bool> refresh_wanted{true};   // a full reload: registry and catalog
    std::atomic<bool> catalog_wanted{false};  // a targeted catalog refresh (pending_effect)
    // Some session waits for it, or may: at once. Otherwise every request only confirms what
    // its session predicted, and the watcher gathers them for up to confirm_delay.
    std::atomic<bool> catalog_urgent{false};
    std::atomic<std::uint64_t> requested{0};  // tickets handed out
    ProgressSignal completed;                 // highest ticket a published snapshot covers
    std::atomic<int> sessions{0};             // sessions open to it through this proxy
    std::atomic<bool> released{false};        // KILL: not followed until a session comes
    std::atomic<bool> following{false};       // its registry connection is up (watcher's)
    // Until when (Clock ticks) sessions may serve seeds from `snapshot`: the lease this proxy
    // renewed last, less a margin; trusted_always when no lease applies.
    std::atomic<std::int64_t> trusted_until{trusted_always};
    mutable std::mutex failure_mutex;  // guards read_failure and pending_effect
    std::string read_failure;          // why the newest refresh failed; empty when it succeeded
    rewriter::CatalogEffect pending_effect;  // what DDL changed since the last catalog refresh

    // Publishes the snapshot of a reload.
    void publish(std::shared_ptr<const DatabaseSnapshot> loaded) noexcept;
    // Answers every ticket up to `answered` (those handed out before the reload began), even
    // when it failed: sessions waiting for it go on with the snapshot they have. `failure` is
    // empty when the reload succeeded.
    void answer(std::uint64_t answered, const std::string& failure);
    // The effect a targeted refresh is to apply, emptied (watcher's thread).
    [[nodiscard]] rewriter::CatalogEffect take_effect();
  };
  using List = std::vector<Watched*>;

  // `wake` is called (from any thread, never throwing) when a database is added or a refresh is
  // asked for: the registry watcher's thread has work.
  explicit SnapshotStore(std::function<void()> wake);
  SnapshotStore(const SnapshotStore&) = delete;
  SnapshotStore& operator=(const SnapshotStore&) = delete;
  ~SnapshotStore();

  // Every watched database; the list stays valid until destruction (any thread).
  [[nodiscard]] const List& list() const noexcept;
  [[nodiscard]] Watched* find(std::string_view database) const noexcept;
  // Watches `database` from now on (no check that it is watchable).
  Watched* find_or_add(std::string_view database);

  // A session to `database` begins: follows it from now on if it is not followed yet (a released
  // database too). Returns 0 when a snapshot is published and followed (or the database cannot
  // hold seeds), otherwise a ticket for refreshed(). Every watch() is matched by an unwatch().
  std::uint64_t watch(std::string_view database) noexcept;
  // A session to `database` ended; the watcher may let the database go when it was the last.
  void unwatch(std::string_view database) noexcept;
  [[nodiscard]] std::shared_ptr<const DatabaseSnapshot> current(
      std::string_view database) const noexcept;
  // Asks for a reload soon; never blocks. The ticket is answered by a snapshot loaded after it.
  std::uint64_t request_refresh(std::string_view database) noexcept;
  // Asks for the catalog entries `effect` names to be read again (everything: a full reload).
  // `confirm_only`: the requesting session does not wait for it (it predicted the change).
  std::uint64_t request_refresh(std::string_view database, const rewriter::CatalogEffect& effect,
                                bool confirm_only = false) noexcept;
  // Whether sessions may serve seeds from the snapshot now (one atomic load and a clock read).
  [[nodiscard]] bool trusted(std::string_view database) const noexcept;
  [[nodiscard]] SnapshotTrust trust(std::string_view database) const;
  [[nodiscard]] bool refreshed(std::string_view database, std::uint64_t ticket) const noexcept;
  // The newest ticket handed out for `database` and not answered yet; 0 when there is none.
  [[nodiscard]] std::uint64_t outstanding(std::string_view database) const noexcept;
  // outstanding(database) == 0 && trusted(database), with one look-up.
  [[nodiscard]] bool settled(std::string_view database) const noexcept;
  // Waits without polling until refreshed(database, ticket) or `timeout`: on the coroutine's
  // executor, or blocking a plain thread. True when the ticket was answered.
  [[nodiscard]] boost::asio::awaitable<bool> wait_refreshed(
      std::string database, std::uint64_t ticket, std::chrono::steady_clock::duration timeout);
  [[nodiscard]] bool wait_refreshed_blocking(std::string_view database, std::uint64_t ticket,
                                             std::chrono::steady_clock::duration timeout);

  // A version no snapshot of this process had before.
  [[nodiscard]] std::uint64_t next_version() noexcept;
  // Released databases left out (their snapshot is not followed).
  [[nodiscard]] std::vector<SeedStatus> seed_statuses() const;
  [[nodiscard]] std::vector<std::string> databases_with_registry() const;
  // Databases with a registry and a seed that is not rolled back, not released: the ones the
  // materialization engine works in.
  [[nodiscard]] std::vector<std::string> databases_with_live_seeds() const;
  // Why the newest read of a database that matters for health failed: one the configuration
  // names (`configured`), or one whose registry was read before. A name a client merely asked
  // for (a typo, a database that never existed) is not the proxy's health.
  [[nodiscard]] std::string read_failure(std::span<const std::string> configured) const;

 private:
  std::function<void()> wake_;
  std::mutex add_mutex_;                         // guards owned_ and lists_
  std::vector<std::unique_ptr<Watched>> owned_;  // never shrinks: pointers stay valid
  // The current list, immutable, replaced on add; read with one plain atomic load (no reference
  // count traffic on the hot path). Replaced lists are kept until destruction (one per database).
  std::atomic<const List*> list_;
  std::vector<std::unique_ptr<const List>> lists_;
  std::atomic<std::uint64_t> next_version_{1};
};

}  // namespace seedproxy::seeds
