// A counter other threads advance and coroutines await, each on its own executor, without polling:
// a waiter parks on a timer that advance_to() cancels through the waiter's own executor.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace seedproxy {

// The executor of a waiting coroutine must run one handler at a time (an io_context run by one
// thread, or a strand): the cancel advance_to() posts then cannot overtake the wait it ends.
class ProgressSignal {
 public:
  ProgressSignal() = default;
  ProgressSignal(const ProgressSignal&) = delete;
  ProgressSignal& operator=(const ProgressSignal&) = delete;

  // Raises the counter to `value` (never lowers it) and wakes every waiter it satisfies. Any
  // thread.
  void advance_to(std::uint64_t value);
  // Lock-free: sessions ask it on every statement while a wait may be due.
  [[nodiscard]] std::uint64_t value() const noexcept {
    return value_.load(std::memory_order_acquire);
  }

  // Waits until the counter reaches `target` or `timeout` passes; true when it was reached. The
  // wait also ends early, answering the counter's state, if the coroutine is cancelled.
  [[nodiscard]] boost::asio::awaitable<bool> wait_for(std::uint64_t target,
                                                      std::chrono::steady_clock::duration timeout);
  // The same for a plain thread (the materialization engine's): blocks on a condition variable.
  [[nodiscard]] bool wait_blocking(std::uint64_t target,
                                   std::chrono::steady_clock::duration timeout);

 private:
  struct Waiter {
    explicit Waiter(const boost::asio::any_io_executor& executor, std::uint64_t target)
        : timer(executor), target(target) {}
    boost::asio::steady_timer timer;
    std::uint64_t target;
  };

  mutable std::mutex mutex_;
  std::condition_variable advanced_;     // for wait_blocking
  std::atomic<std::uint64_t> value_{0};  // written under mutex_
  std::vector<std::shared_ptr<Waiter>> waiters_;
};

// A one-shot event: complete() once from any thread, wait() from coroutines.
class Completion {
 public:
  void complete() { signal_.advance_to(1); }
  [[nodiscard]] bool done() const noexcept { return signal_.value() >= 1; }
  [[nodiscard]] boost::asio::awaitable<bool> wait(std::chrono::steady_clock::duration timeout) {
    return signal_.wait_for(1, timeout);
  }

 private:
  ProgressSignal signal_;
};

}  // namespace seedproxy
