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
    if (value <= value_) return;
    value_ = value;
    const auto reached = [&](const std::shared_ptr<Waiter>& w) { return w->target <= value_; };
    std::copy_if(waiters_.begin(), waiters_.end(), std::back_inserter(woken), reached);
    std::erase_if(waiters_, reached);
  }
  // Cancelled on the waiter's own executor: the timer is never touched from this thread.
  for (auto& waiter : woken) {
    auto& timer = waiter->timer;
    asio::post(timer.get_executor(), [waiter = std::move(waiter)] { waiter->timer.cancel(); });
  }
}

std::uint64_t ProgressSignal::value() const {
  const std::lock_guard lock(mutex_);
  return value_;
}

asio::awaitable<bool> ProgressSignal::wait_for(std::uint64_t target,
                                               std::chrono::steady_clock::duration timeout) {
  auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor, target);
  {
    const std::lock_guard lock(mutex_);
    if (value_ >= target) co_return true;
    waiters_.push_back(waiter);
  }
  waiter->timer.expires_after(timeout);
  (void)co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  const std::lock_guard lock(mutex_);
  std::erase(waiters_, waiter);  // still there after a timeout or a cancellation
  co_return value_ >= target;
}

}  // namespace seedproxy
