// StatementTimer: ReadyForQuery messages are matched to round trips in order, pipelined or not.
#include "proxy/observe/statement_timer.hpp"

#include <doctest/doctest.h>

using seedproxy::proxy::StatementKind;
using seedproxy::proxy::StatementTimer;
using namespace std::chrono_literals;

TEST_CASE("the ReadyForQuery after startup answers nothing") {
  StatementTimer timer;
  CHECK_FALSE(timer.ready().has_value());
  CHECK(timer.pending() == 0);
}

TEST_CASE("pipelined round trips are timed in order") {
  StatementTimer timer;
  const StatementTimer::Clock::time_point t0{};
  timer.started(StatementKind::extended_sync, t0);
  timer.started(StatementKind::simple_query, t0 + 1ms);
  timer.started(StatementKind::function_call, t0 + 2ms);
  CHECK(timer.pending() == 3);
  auto first = timer.ready(t0 + 10ms);
  REQUIRE(first);
  CHECK(first->kind == StatementKind::extended_sync);
  CHECK(first->elapsed == 10ms);
  auto second = timer.ready(t0 + 11ms);
  REQUIRE(second);
  CHECK(second->kind == StatementKind::simple_query);
  CHECK(second->elapsed == 10ms);
  auto third = timer.ready(t0 + 20ms);
  REQUIRE(third);
  CHECK(third->kind == StatementKind::function_call);
  CHECK(third->elapsed == 18ms);
  CHECK_FALSE(timer.ready(t0 + 30ms));
}

TEST_CASE("round trips past the limit are counted in order but not timed") {
  StatementTimer timer;
  const StatementTimer::Clock::time_point t0{};
  for (std::size_t i = 0; i < StatementTimer::max_timed + 3; ++i) {
    timer.started(StatementKind::extended_sync, t0);
  }
  CHECK(timer.pending() == StatementTimer::max_timed + 3);
  std::size_t timed = 0;
  for (std::size_t i = 0; i < StatementTimer::max_timed + 3; ++i) {
    if (timer.ready(t0 + 1ms)) ++timed;
  }
  CHECK(timed == StatementTimer::max_timed);
  CHECK(timer.pending() == 0);
  // Later round trips are timed again, and matched to their own ReadyForQuery.
  timer.started(StatementKind::simple_query, t0 + 5ms);
  auto next = timer.ready(t0 + 7ms);
  REQUIRE(next);
  CHECK(next->kind == StatementKind::simple_query);
  CHECK(next->elapsed == 2ms);
}

TEST_CASE("queue drains and refills while the limit is reached") {
  StatementTimer timer;
  const StatementTimer::Clock::time_point t0{};
  for (std::size_t i = 0; i < StatementTimer::max_timed; ++i) {
    timer.started(StatementKind::extended_sync, t0);
  }
  timer.started(StatementKind::simple_query, t0);         // untimed, after the last timed entry
  CHECK(timer.ready(t0 + 1ms));                           // frees one slot at the front
  timer.started(StatementKind::function_call, t0 + 2ms);  // must still come after the untimed one
  for (std::size_t i = 1; i < StatementTimer::max_timed; ++i) CHECK(timer.ready(t0 + 3ms));
  CHECK_FALSE(timer.ready(t0 + 4ms));  // the untimed simple query
  auto last = timer.ready(t0 + 5ms);
  REQUIRE(last);
  CHECK(last->kind == StatementKind::function_call);
  CHECK(last->elapsed == 3ms);
}

TEST_CASE("a Sync sent before the server entered COPY IN gets no ReadyForQuery of its own") {
  StatementTimer timer;
  const StatementTimer::Clock::time_point t0{};
  timer.started(StatementKind::simple_query, t0);   // answered before the copy starts
  timer.started(StatementKind::extended_sync, t0);  // Parse/Bind/Execute(COPY FROM STDIN)/Sync
  CHECK(timer.ready(t0 + 1ms));                     // the simple query's ReadyForQuery
  timer.copy_in_started();                          // CopyInResponse: that Sync is ignored
  CHECK(timer.pending() == 0);
  timer.started(StatementKind::extended_sync, t0 + 5ms);  // CopyDone, Sync
  timer.started(StatementKind::simple_query, t0 + 6ms);
  auto copy = timer.ready(t0 + 8ms);
  REQUIRE(copy);
  CHECK(copy->kind == StatementKind::extended_sync);
  CHECK(copy->elapsed == 3ms);
  auto next = timer.ready(t0 + 9ms);
  REQUIRE(next);
  CHECK(next->kind == StatementKind::simple_query);
  CHECK(next->elapsed == 3ms);
}

TEST_CASE("COPY IN from a simple Query keeps the Query waiting") {
  StatementTimer timer;
  const StatementTimer::Clock::time_point t0{};
  timer.started(StatementKind::simple_query, t0);
  timer.copy_in_started();
  CHECK(timer.pending() == 1);
  auto copy = timer.ready(t0 + 4ms);
  REQUIRE(copy);
  CHECK(copy->kind == StatementKind::simple_query);
}

TEST_CASE("round trips stay in order when the queue wraps around and grows") {
  // The queue is a ring: an answered front frees a slot at its start, so later round trips wrap
  // past the end, and growing it while wrapped must keep the oldest first.
  StatementTimer timer;
  const StatementTimer::Clock::time_point t0{};
  int next_started = 0;
  int next_answered = 0;
  const auto start = [&](int count) {
    for (int i = 0; i < count; ++i, ++next_started)
      timer.started(StatementKind::simple_query, t0 + std::chrono::milliseconds(next_started));
  };
  const auto answer = [&](int count) {
    for (int i = 0; i < count; ++i, ++next_answered) {
      const auto finished = timer.ready(t0 + 100ms);
      REQUIRE(finished);
      CHECK(finished->elapsed == 100ms - std::chrono::milliseconds(next_answered));
    }
  };
  start(2);
  answer(1);
  start(1);  // wraps to the ring's first slot
  start(3);  // grows while wrapped
  CHECK(timer.pending() == 5);
  answer(2);
  start(4);
  answer(7);
  CHECK(timer.pending() == 0);
  CHECK_FALSE(timer.ready(t0 + 100ms));
}
