// Writes the read tally to each database's registry ("seedproxy"."read_counts", one row per
// attribute, minute and proxy instance) on its own thread every few seconds and once more when
// stopped, so the sliding read window survives restarts and sums over every proxy.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/progress_signal.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/reads/read_tally.hpp"

namespace seedproxy::seeds {

class ReadFlusher {
 public:
  // Starts the thread. `instance` is this proxy's name in the registry (config.instance);
  // `flush_seconds` is config.materialization.reads_flush_seconds.
  ReadFlusher(ReadTally& tally, ControlTarget target, std::string instance, double flush_seconds);
  ReadFlusher(const ReadFlusher&) = delete;
  ReadFlusher& operator=(const ReadFlusher&) = delete;
  // stop().
  ~ReadFlusher();

  // Flushes at once instead of at the end of the current period. Any thread; never blocks.
  void flush_now() noexcept;
  // Admin KILL: writes what was counted so far at once and closes `database`'s connection, then
  // completes `done`. Any thread; never blocks. (A database's connection is closed anyway after
  // a round with nothing to write there.)
  void release(std::string database, std::shared_ptr<Completion> done);
  // A final flush (counts that cannot be written then are lost, and logged), then the thread
  // ends. Blocks for that flush: at most a connect timeout per database that cannot be reached.
  // Idempotent.
  void stop() noexcept;

  // Counts of a database that stays unwritable are given back to the tally for this long, then
  // dropped (so they are not attributed to a minute long after they happened).
  static constexpr std::chrono::minutes keep_unwritten{60};
  // How often each database's rows older than its seeds' windows are deleted.
  static constexpr std::chrono::minutes prune_every{1};

 private:
  using Clock = std::chrono::steady_clock;

  // One database this proxy has counted reads in.
  struct Database {
    std::unique_ptr<ControlConnection> connection;
    bool registry = false;                           // seen at version >= 1 on this connection
    std::optional<Clock::time_point> failing_since;  // start of the current failure streak
    std::uint64_t failed_rounds = 0;
    bool dropping_logged = false;
    Clock::time_point last_prune{};
  };

  void run();
  // flush(), never throwing: the thread must survive any round.
  void flush_guarded(bool final) noexcept;
  // Takes the tally and writes it, database by database. `final`: no restore on failure.
  void flush(bool final);
  void flush_database(const std::string& name, Database& d,
                      const std::vector<const CountedReads*>& counts, bool final);
  // A failed write: reconnect next round, give the counts back (or drop them after an hour, or
  // at shutdown), log once per failure streak.
  void failed(const std::string& name, Database& d, const std::vector<const CountedReads*>& counts,
              bool final, const std::string& why);
  // Connects when needed; false when the database has no registry (counts are then dropped).
  [[nodiscard]] bool ready(const std::string& name, Database& d);
  void prune(const std::string& name, Database& d);

  ReadTally& tally_;
  const ControlTarget target_;
  const std::string instance_;
  const Clock::duration period_;
  std::map<std::string, Database> databases_;  // flusher thread only

  std::mutex mutex_;
  std::condition_variable wake_;
  bool wake_requested_ = false;                                                // under mutex_
  bool stopping_ = false;                                                      // under mutex_
  std::vector<std::pair<std::string, std::shared_ptr<Completion>>> releases_;  // under mutex_
  std::thread thread_;
};

}  // namespace seedproxy::seeds
