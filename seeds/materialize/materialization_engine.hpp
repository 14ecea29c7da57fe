// The Gradual Materialization Engine in a running proxy: for every database with a registry and a
// live seed, a worker that elects one materializer among all proxies (a session advisory lock),
// decides what to materialize (operator requests, then interrupted work, then the hottest seed
// past its read threshold), runs the Materializer for it on its own thread, waits for every live
// proxy to acknowledge each phase change, follows PAUSE/RESUME/ROLLBACK requests within a second,
// and publishes progress. A worker goes (closing its connections) when its database has no live
// seed left or is released. Admin commands are served off the I/O threads as jobs.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/progress_signal.hpp"
#include "config/config.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/materializer.hpp"
#include "seeds/materialize/progress.hpp"

namespace seedproxy::seeds {

class SnapshotRegistry;
struct SeedStatus;

// An admin console command for the engine. `target` as typed: [[database.]schema.]table.attribute,
// empty for PAUSE / RESUME of everything.
struct EngineJob {
  enum class Verb : std::uint8_t { materialize, rollback, pause, resume };
  Verb verb = Verb::materialize;
  std::string target;
  // Set by the engine before `done`:
  std::string sqlstate;  // empty: accepted
  std::string message;   // the error, or what was done
  std::string hint;
  Completion done;
};

class MaterializationEngine {
 public:
  MaterializationEngine(ControlTarget target, std::string instance, SnapshotRegistry& snapshots,
                        config::Materialization settings);
  MaterializationEngine(const MaterializationEngine&) = delete;
  MaterializationEngine& operator=(const MaterializationEngine&) = delete;
  ~MaterializationEngine();

  void start();
  // The clients' transaction times (filled by the proxy's sessions, sampled every second), which
  // the backfill paces itself on (materialization.latency_ratio). Set before start(); must
  // outlive the engine.
  void watch_latency(LatencyHistory* latency) noexcept { latency_ = latency; }
  // Stops every backfill (each within about a second) and joins the threads. Idempotent.
  void stop();

  // Never blocks: the engine's thread answers the job and then sets job->done.
  void submit(std::shared_ptr<EngineJob> job);

  // Every seed with a materialization (running, finished or requested), from the newest reads;
  // non-blocking, any thread.
  [[nodiscard]] std::vector<MaterializationStatus> statuses() const;

  // Lets `database` go (admin KILL): its worker stops (a backfill within about a second, resumed
  // later from the registry) and closes its connections; `done` is completed then. No worker is
  // made for it again while the registry snapshots say it is released. Never blocks.
  void release(std::string database, std::shared_ptr<Completion> done);

 private:
  class Worker;
  struct Release {
    std::string database;
    std::shared_ptr<Completion> done;
  };

  void run();
  // Engine thread: makes workers for the databases with live seeds, lets the others go.
  void manage_workers();
  void wake_worker(const std::string& database);
  // Engine thread: answers one admin command.
  void serve(EngineJob& job);
  // The command of `job` for one seed it names; false (and `job` failed) when refused. PAUSE and
  // RESUME add the seed's name to `paused`.
  bool carry_out(EngineJob& job, ControlConnection& connection, const SeedStatus& target,
                 std::string& paused);

  ControlTarget target_;
  std::string instance_;
  SnapshotRegistry& snapshots_;
  config::Materialization settings_;
  LatencyHistory* latency_ = nullptr;

  mutable std::mutex mutex_;  // guards jobs_, workers_, stopping_ and wakes the engine thread
  std::condition_variable wake_;
  std::vector<std::shared_ptr<EngineJob>> jobs_;
  std::vector<Release> releases_;
  std::map<std::string, std::unique_ptr<Worker>> workers_;  // by database
  // The last statuses of workers that went: SHOW MATERIALIZATIONS keeps finished rollbacks.
  std::map<std::string, std::vector<MaterializationStatus>> retired_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace seedproxy::seeds
