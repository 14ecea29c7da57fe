// ProgressSignal: waiters registered under a mutex, woken by a cancel posted to their executor.
#include "common/progress_signal.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace seedproxy {

namespace asio = boost::asio;

void ProgressSignal::advance_to(std::uint64_t value) {
  std::vector<std::shared_ptr<Waiter>> woken;
  {
    const std::lock_guard lock(mutex_);
    if (value <= value_.load(std::memory_order_relaxed)) return;
    value_.store(value, std::memory_order_release);
    const auto reached = [&](const std::shared_ptr<Waiter>& w) { return w->target <= value; };
    std::copy_if(waiters_.begin(), waiters_.end(), std::back_inserter(woken), reached);
    std::erase_if(waiters_, reached);
  }
  advanced_.notify_all();
  // Cancelled on the waiter's own executor: the timer is never touched from this thread.
  for (auto& waiter : woken) {
    auto& timer = waiter->timer;
    asio::post(timer.get_executor(), [waiter = std::move(waiter)] { waiter->timer.cancel(); });
  }
}

asio::awaitable<bool> ProgressSignal::wait_for(std::uint64_t target,
                                               std::chrono::steady_clock::duration timeout) {
  auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor, target);
  {
    const std::lock_guard lock(mutex_);
    if (value() >= target) co_return true;
    waiters_.push_back(waiter);
  }
  waiter->timer.expires_after(timeout);
  (void)co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  const std::lock_guard lock(mutex_);
  std::erase(waiters_, waiter);  // still there after a timeout or a cancellation
  co_return value() >= target;
}

bool ProgressSignal::wait_blocking(std::uint64_t target,
                                   std::chrono::steady_clock::duration timeout) {
  std::unique_lock lock(mutex_);
  return advanced_.wait_for(lock, timeout, [&] { return value() >= target; });
}

}  // namespace seedproxy
