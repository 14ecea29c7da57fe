// Which of upstream.hosts is the primary now, for client sessions (the control connections ask
// libpq with target_session_attrs instead): checked on a thread of its own, never on I/O threads.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/progress_signal.hpp"
#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

class PrimaryLocator {
 public:
  // `target.hosts` in configuration order; `database` is where the check connects (the control
  // user must be allowed to); `check_seconds` between checks while nothing is suspected.
  PrimaryLocator(ControlTarget target, std::string database, double check_seconds);
  PrimaryLocator(const PrimaryLocator&) = delete;
  PrimaryLocator& operator=(const PrimaryLocator&) = delete;
  ~PrimaryLocator();

  // Finds the primary once (so the first sessions go to the right host), then keeps checking.
  void start();

  // Index in target.hosts of the host last found accepting writes; 0 until one is found.
  [[nodiscard]] std::size_t primary() const noexcept {
    return primary_.load(std::memory_order_relaxed);
  }
  // A session could not connect to the host primary() gave it, or found a standby there: check
  // again now, not at the next interval. Cheap, safe from any thread. Returns the number of
  // finished checks at which a check begun after this call has finished (for checked()).
  std::uint64_t suspect() noexcept;
  // Waits (on the caller's executor) until the check suspect() promised has finished, at most
  // `timeout`; true when it has.
  [[nodiscard]] boost::asio::awaitable<bool> checked(std::uint64_t target,
                                                     std::chrono::steady_clock::duration timeout) {
    return checks_.wait_for(target, timeout);
  }
  // How often the primary moved to another host since start(): for logs and tests.
  [[nodiscard]] std::uint64_t changes() const noexcept {
    return changes_.load(std::memory_order_relaxed);
  }

 private:
  void run();
  // One check: the held connection if it still reaches a primary, else a new read-write one.
  void check();
  [[nodiscard]] std::size_t host_of(const ControlConnection& connection) const;

  ControlTarget target_;
  std::string database_;
  double check_seconds_;
  std::atomic<std::size_t> primary_{0};
  std::atomic<std::uint64_t> changes_{0};
  std::unique_ptr<ControlConnection> connection_;  // checker thread only
  std::size_t connected_host_ = 0;                 // checker thread only
  bool warned_none_ = false;                       // checker thread only
  std::mutex mutex_;
  std::condition_variable wake_;
  bool suspected_ = false;  // guarded by mutex_
  bool checking_ = false;   // guarded by mutex_: a check of the thread's is under way
  ProgressSignal checks_;   // checks finished; advanced under mutex_
  bool stopping_ = false;   // guarded by mutex_
  std::thread thread_;
};

}  // namespace seedproxy::seeds
