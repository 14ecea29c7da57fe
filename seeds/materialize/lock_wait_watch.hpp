// Watches, from a connection of its own, the sessions that wait on a lock a backfill or verify
// batch holds: cancels the batch once one of them has waited longer than the limit, and reports
// what it saw so the pacer can make the next batches shorter. One background thread, idle unless
// a batch is running.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/backfill_pacer.hpp"

namespace seedproxy::seeds {

class LockWaitWatch {
 public:
  using Connect = std::function<std::unique_ptr<ControlConnection>()>;

  // `limit`: the longest an application may wait on a batch's lock before the batch is cancelled.
  // `interval`: time between two looks at pg_locks while a batch runs.
  LockWaitWatch(Connect connect, std::chrono::milliseconds limit,
                std::chrono::milliseconds interval = std::chrono::milliseconds(10));
  LockWaitWatch(const LockWaitWatch&) = delete;
  LockWaitWatch& operator=(const LockWaitWatch&) = delete;
  ~LockWaitWatch();

  // Watches backend `pid` (the batch's connection) until disarm().
  void arm(int pid);
  // Stops watching and returns what was seen since arm(). Returns only after a look in flight has
  // finished, so a cancel it sent cannot reach a later statement of the batch's connection while
  // that one is running.
  ApplicationWaits disarm();

  // Why the watch cannot look (no connection, a failing query); empty when it works.
  [[nodiscard]] std::string problem() const;

 private:
  void loop();
  void look(int pid);

  Connect connect_;
  std::chrono::milliseconds limit_, interval_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  int pid_ = 0;  // 0: disarmed
  bool looking_ = false;
  bool stopping_ = false;
  ApplicationWaits seen_;
  std::string problem_;
  std::unique_ptr<ControlConnection> connection_;         // the thread's
  std::chrono::steady_clock::time_point next_connect_{};  // the thread's
  std::thread thread_;
};

}  // namespace seedproxy::seeds
