// The registry watcher: the control thread that keeps every watched database's snapshot fresh.
//
// It LISTENs on each database's registry channel, sleeps on those sockets and an eventfd that
// sessions wake it with, reloads a database when told to, when notified and periodically, and runs
// the chores of the seed applier and the DDL-seed queue between rounds.
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

#include "seeds/control/control_connection.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

class RegistryListener;

class RegistryWatcher {
 public:
  // What the watcher's thread does besides following the registries.
  struct Chores {
    std::function<void()> serve_ddl_seeds;  // every round
    std::function<void()> retry_pending;    // at most once a second
    std::function<bool()> pending;          // retry_pending has work: do not sleep long
  };

  RegistryWatcher(ControlTarget target, SnapshotStore& store, double refresh_seconds);
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
  // Stops and joins the thread; idempotent.
  void stop() noexcept;

 private:
  using Clock = std::chrono::steady_clock;
  // The LISTEN connection of one database (watcher's thread only).
  struct Listening {
    std::unique_ptr<RegistryListener> listener;
    Clock::time_point next_attempt{};
    std::string last_problem;  // log a failure to listen once, not every second
  };

  void run();
  void listen(Clock::time_point now);
  void reload_due(bool periodic);
  // Sleeps until a session wakes the thread, a notification arrives or `deadline` passes.
  void sleep_until(Clock::time_point deadline);

  ControlTarget target_;
  SnapshotStore& store_;
  Clock::duration period_;
  Chores chores_;
  std::mutex reload_mutex_;  // one reload at a time: the thread's, or the applier's after a change
  std::map<const SnapshotStore::Watched*, std::string>
      last_problems_;                                             // logged once; reload_mutex_
  std::map<const SnapshotStore::Watched*, Listening> listening_;  // watcher's thread only
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // eventfd: sessions and stop() wake the thread
  std::thread thread_;
};

}  // namespace seedproxy::seeds
