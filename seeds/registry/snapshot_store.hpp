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
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/progress_signal.hpp"
#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"

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
};

struct DatabaseSnapshot {
  rewriter::Catalog catalog;  // empty while the database has no active seed
  rewriter::SeedSet seeds;
  std::vector<SeedStatus> statuses;  // every registry row, rolled-back ones included
  bool registry = false;             // the database has a `seedproxy` schema
  std::uint64_t version = 0;         // distinct for every snapshot ever published by this process
};

class SnapshotStore {
 public:
  // One watched database. Sessions read `snapshot`; a refresh request takes a ticket from
  // `requested`, and the snapshot that answers it raises `completed` to at least that ticket.
  struct Watched {
    std::string name;
    std::atomic<std::shared_ptr<const DatabaseSnapshot>> snapshot;
    std::atomic<bool> refresh_wanted{true};
    std::atomic<std::uint64_t> requested{0};  // tickets handed out
    ProgressSignal completed;                 // highest ticket a published snapshot covers
    mutable std::mutex failure_mutex;         // guards read_failure
    std::string read_failure;  // why the newest refresh failed; empty when it succeeded

    // Publishes the snapshot of a reload.
    void publish(std::shared_ptr<const DatabaseSnapshot> loaded) noexcept;
    // Answers every ticket up to `answered` (those handed out before the reload began), even
    // when it failed: sessions waiting for it go on with the snapshot they have. `failure` is
    // empty when the reload succeeded.
    void answer(std::uint64_t answered, const std::string& failure);
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

  // Starts following `database` if it is not followed yet. Returns 0 when a snapshot is already
  // published (or the database cannot hold seeds), otherwise a ticket for refreshed().
  std::uint64_t watch(std::string_view database) noexcept;
  [[nodiscard]] std::shared_ptr<const DatabaseSnapshot> current(
      std::string_view database) const noexcept;
  // Asks for a reload soon; never blocks. The ticket is answered by a snapshot loaded after it.
  std::uint64_t request_refresh(std::string_view database) noexcept;
  [[nodiscard]] bool refreshed(std::string_view database, std::uint64_t ticket) const noexcept;
  // Waits without polling until refreshed(database, ticket) or `timeout`: on the coroutine's
  // executor, or blocking a plain thread. True when the ticket was answered.
  [[nodiscard]] boost::asio::awaitable<bool> wait_refreshed(
      std::string database, std::uint64_t ticket, std::chrono::steady_clock::duration timeout);
  [[nodiscard]] bool wait_refreshed_blocking(std::string_view database, std::uint64_t ticket,
                                             std::chrono::steady_clock::duration timeout);

  // A version no snapshot of this process had before.
  [[nodiscard]] std::uint64_t next_version() noexcept;
  [[nodiscard]] std::vector<SeedStatus> seed_statuses() const;
  [[nodiscard]] std::vector<std::string> databases_with_registry() const;
  [[nodiscard]] std::string read_failure() const;

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
