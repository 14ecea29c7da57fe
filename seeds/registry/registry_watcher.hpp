// The registry watcher: the control thread that keeps every followed database's snapshot fresh and
// this proxy's lease in its registry renewed.
//
// A database is followed (one registry connection: LISTEN, reloads, heartbeats) while it has a
// live seed, or while sessions use it (and a second after the last one left), unless the admin
// console released it. The thread sleeps on those sockets and an eventfd that sessions wake it
// with; it reloads a database when told to, when notified and periodically, refreshes only the
// relations DDL named when that is enough, renews the lease a third of it apart, and runs the
// chores of the seed applier and the DDL-seed queue between rounds.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/progress_signal.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

class RegistryListener;

// Who this proxy is in the registries' heartbeat tables, and its lease.
struct FleetSettings {
  std::string instance;
  std::string address;  // where clients reach it, "host:port", for operators
  double lease_seconds = 5.0;
};

class RegistryWatcher {
 public:
  // What the watcher's thread does besides following the registries.
  struct Chores {
    std::function<void()> serve_ddl_seeds;  // every round
    std::function<void()> retry_pending;    // at most once a second
    std::function<bool()> pending;          // retry_pending has work: do not sleep long
  };

  RegistryWatcher(ControlTarget target, SnapshotStore& store, double refresh_seconds,
                  FleetSettings fleet);
  RegistryWatcher(const RegistryWatcher&) = delete;
  RegistryWatcher& operator=(const RegistryWatcher&) = delete;
  ~RegistryWatcher();

  // Wakes the thread (any thread, never blocks).
  void wake() noexcept;
  // Reads `database`'s registry, builds its snapshot and publishes it, answering every refresh
  // ticket handed out before (blocking: libpq on the calling thread; reloads run one at a time).
  void reload(SnapshotStore::Watched& database);
  // Loads the first snapshot of every database watched so far, then follows them all on the
  // watcher's thread until stop().
  void start(Chores chores);
  // Lets `database` go: this proxy leaves its heartbeat table and closes its registry connection;
  // `done` is completed then. It is followed again when a session to it begins. Any thread.
  void release(SnapshotStore::Watched& database, std::shared_ptr<Completion> done);
  // Leaves every heartbeat table, stops and joins the thread; idempotent.
  void stop() noexcept;

  // How long a database nobody uses any more keeps its registry connection: short enough that
  // DROP DATABASE (which waits up to 5 s for other connections to go) succeeds.
  static constexpr std::chrono::milliseconds linger{1000};

 private:
  using Clock = std::chrono::steady_clock;
  // The registry connection of one database and what the watcher knows of it; reload_mutex_.
  struct Link {
    std::unique_ptr<RegistryListener> listener;
    Clock::time_point next_attempt{};
    Clock::time_point next_heartbeat{};
    Clock::time_point idle_since{};  // when nothing was left to follow it for
    bool idle = false;
    bool heartbeats = false;          // the registry has the heartbeat table
    std::uint64_t served = 0;         // registry change version of the published snapshot
    std::uint64_t announced = 0;      // the served version last written to the heartbeat row
    std::string last_problem;         // log a failure to connect once, not every second
    Clock::time_point confirm_due{};  // when a confirming catalog refresh is due; {}: none
  };
  struct Release {
    SnapshotStore::Watched* database;
    std::shared_ptr<Completion> done;
  };

  void run();
  // Opens the connections of databases that need following, closes the others'.
  void manage_links(Clock::time_point now);
  [[nodiscard]] bool wanted(SnapshotStore::Watched& database, Link& link, Clock::time_point now);
  void close_link(SnapshotStore::Watched& database, Link& link);
  void reload_due(bool periodic);
  void reload_locked(SnapshotStore::Watched& database);
  void refresh_catalog_locked(SnapshotStore::Watched& database);
  // Whether the targeted refresh `database` wants is due now: at once when urgent, confirm_delay
  // after the first confirming request otherwise.
  [[nodiscard]] bool catalog_due(SnapshotStore::Watched& database, Link& link);
  // Renews the lease; true when the registry is not newer than what this proxy serves (then the
  // snapshot is trusted for most of the lease), false when a reload is due first.
  bool heartbeat_locked(SnapshotStore::Watched& database, Link& link,
                        ControlConnection& connection);
  void heartbeats_due(Clock::time_point now);
  // A failure on a database's registry connection: closed if it broke, reported to sessions.
  void link_failed(SnapshotStore::Watched& database, Link& link, const std::string& problem);
  // Sleeps until a session wakes the thread, a notification arrives or `deadline` passes.
  void sleep_until(Clock::time_point deadline);
  [[nodiscard]] Clock::time_point next_deadline(Clock::time_point periodic);

  ControlTarget target_;
  SnapshotStore& store_;
  Clock::duration period_;
  FleetSettings fleet_;
  Chores chores_;
  // One reload at a time, the thread's or the applier's after a change; guards links_ and
  // last_problems_.
  std::mutex reload_mutex_;
  std::map<const SnapshotStore::Watched*, std::string> last_problems_;  // logged once
  std::map<const SnapshotStore::Watched*, Link> links_;
  // Held only to hand releases over: release() runs on an I/O thread, which must not wait for a
  // reload.
  std::mutex release_mutex_;
  std::vector<Release> releases_;
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // eventfd: sessions and stop() wake the thread
  std::thread thread_;
};

}  // namespace seedproxy::seeds
