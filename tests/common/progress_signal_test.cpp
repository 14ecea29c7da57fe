// ProgressSignal and Completion: waiters on one thread woken from another, deadlines, no polling.
#include "common/progress_signal.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>

namespace asio = boost::asio;
using namespace std::chrono_literals;
using seedproxy::Completion;
using seedproxy::ProgressSignal;

TEST_CASE("a waiter on one thread is woken by another thread's advance, in order of targets") {
  ProgressSignal signal;
  asio::io_context context;
  std::vector<int> woken;
  for (int target : {3, 1, 2})
    asio::co_spawn(
        context,
        [&, target]() -> asio::awaitable<void> {
          const bool reached = co_await signal.wait_for(static_cast<std::uint64_t>(target), 60s);
          CHECK(reached);
          woken.push_back(target);
        },
        asio::detached);
  context.poll();  // every waiter is parked now
  std::thread other([&] {
    signal.advance_to(1);
    signal.advance_to(2);
    signal.advance_to(2);  // no effect
    signal.advance_to(3);
  });
  other.join();
  context.run();  // returns once every waiter is woken (a lost wake-up would hang for 60 s)
  CHECK(woken.size() == 3);
  CHECK(signal.value() == 3);
}

TEST_CASE("a wait for a value already reached returns at once; a missed one times out false") {
  ProgressSignal signal;
  signal.advance_to(5);
  signal.advance_to(4);  // never lowers
  CHECK(signal.value() == 5);
  asio::io_context context;
  bool reached_now = false, reached_later = true;
  asio::co_spawn(
      context,
      [&]() -> asio::awaitable<void> {
        reached_now = co_await signal.wait_for(5, 60s);
        reached_later = co_await signal.wait_for(6, 10ms);
      },
      asio::detached);
  context.run();
  CHECK(reached_now);
  CHECK_FALSE(reached_later);
}

TEST_CASE("a completion wakes waiters on two io_contexts run by two threads") {
  Completion done;
  asio::io_context a, b;
  std::atomic<int> woken{0};
  for (auto* context : {&a, &b})
    asio::co_spawn(
        *context,
        [&]() -> asio::awaitable<void> {
          const bool completed = co_await done.wait(60s);
          if (completed) ++woken;
        },
        asio::detached);
  a.poll();
  b.poll();
  CHECK_FALSE(done.done());
  std::thread ta([&] { a.run(); });
  std::thread tb([&] { b.run(); });
  done.complete();
  ta.join();
  tb.join();
  CHECK(done.done());
  CHECK(woken == 2);
}

TEST_CASE("a plain thread blocks until another advances the counter, or times out") {
  ProgressSignal signal;
  CHECK_FALSE(signal.wait_blocking(1, 1ms));
  std::thread other([&] { signal.advance_to(2); });
  CHECK(signal.wait_blocking(2, 60s));  // woken by the advance (a lost wake-up would take 60 s)
  other.join();
  CHECK(signal.wait_blocking(1, 0s));
}
