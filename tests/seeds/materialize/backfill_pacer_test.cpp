// Unit tests of the backfill pacer: batch size converges on the target duration, pauses follow
// the batch, back-off grows and resets. No database.
#include "seeds/materialize/backfill_pacer.hpp"

#include <doctest/doctest.h>

using namespace std::chrono_literals;
using seedproxy::seeds::BackfillPacer;
using seedproxy::seeds::PacerSettings;

namespace {

PacerSettings settings() {
  PacerSettings s;
  s.initial_batch_rows = 1000;
  s.min_batch_rows = 10;
  s.max_batch_rows = 100000;
  s.target_batch = 100ms;
  s.pause_ratio = 0.5;
  s.min_pause = 5ms;
  s.backoff_initial = 100ms;
  s.backoff_max = 1000ms;
  return s;
}

// A simulated table where each row costs `per_row`.
std::chrono::nanoseconds cost(std::uint64_t rows, std::chrono::nanoseconds per_row) {
  return per_row * static_cast<std::int64_t>(rows);
}

}  // namespace

TEST_CASE("batch size converges on the target duration") {
  BackfillPacer pacer(settings());
  // 10 µs per row: 10,000 rows make 100 ms.
  for (int i = 0; i < 20; ++i)
    (void)pacer.on_batch(pacer.batch_rows(), cost(pacer.batch_rows(), 10us));
  CHECK(pacer.batch_rows() >= 9500);
  CHECK(pacer.batch_rows() <= 10500);
}

TEST_CASE("size changes at most by a factor of two per batch") {
  BackfillPacer pacer(settings());
  (void)pacer.on_batch(1000, 1ms);  // 100x faster than the target
  CHECK(pacer.batch_rows() == 2000);
  (void)pacer.on_batch(2000, 10s);  // far slower
  CHECK(pacer.batch_rows() == 1000);
}

TEST_CASE("a slow database shrinks the batch toward the target") {
  BackfillPacer pacer(settings());
  for (int i = 0; i < 20; ++i)
    (void)pacer.on_batch(pacer.batch_rows(), cost(pacer.batch_rows(), 1ms));
  CHECK(pacer.batch_rows() == 100);  // 1 ms per row: 100 rows per 100 ms
}

TEST_CASE("bounds hold") {
  BackfillPacer fast(settings());
  for (int i = 0; i < 40; ++i) (void)fast.on_batch(fast.batch_rows(), 1us);
  CHECK(fast.batch_rows() == 100000);
  BackfillPacer slow(settings());
  for (int i = 0; i < 40; ++i) (void)slow.on_batch(slow.batch_rows(), 10s);
  CHECK(slow.batch_rows() == 10);
}

TEST_CASE("a short last batch does not grow the size, a slow one shrinks it") {
  BackfillPacer pacer(settings());
  (void)pacer.on_batch(3, 1us);
  CHECK(pacer.batch_rows() == 1000);
  (void)pacer.on_batch(3, 400ms);
  CHECK(pacer.batch_rows() == 500);
}

TEST_CASE("the pause follows the batch's duration, with a floor") {
  BackfillPacer pacer(settings());
  CHECK(pacer.on_batch(1000, 100ms) == 50ms);
  CHECK(pacer.on_batch(1000, 1ms) == 5ms);
  CHECK(pacer.on_batch(1000, 800ms) == 400ms);  // a busy database: longer pause
}

TEST_CASE("busy back-off doubles, is capped, halves the batch and resets after a success") {
  BackfillPacer pacer(settings());
  CHECK(pacer.on_busy() == 100ms);
  CHECK(pacer.batch_rows() == 500);
  CHECK(pacer.on_busy() == 200ms);
  CHECK(pacer.on_busy() == 400ms);
  CHECK(pacer.on_busy() == 800ms);
  CHECK(pacer.on_busy() == 1000ms);
  CHECK(pacer.on_busy() == 1000ms);
  CHECK(pacer.consecutive_busy() == 6);
  CHECK(pacer.batch_rows() == 16);  // 1000, 500, 250, 125, 63, 32, 16
  for (int i = 0; i < 10; ++i) (void)pacer.on_busy();
  CHECK(pacer.batch_rows() == 10);
  (void)pacer.on_batch(10, 1ms);
  CHECK(pacer.consecutive_busy() == 0);
  CHECK(pacer.on_busy() == 100ms);
}

TEST_CASE("rate counts batches and pauses") {
  BackfillPacer pacer(settings());
  CHECK(pacer.rows_per_second() == 0.0);
  (void)pacer.on_batch(1000, 100ms);  // no pause before the first batch: 10,000 rows/s
  CHECK(pacer.rows_per_second() == doctest::Approx(10000.0));
  for (int i = 0; i < 30; ++i) (void)pacer.on_batch(1000, 100ms);  // + 50 ms pauses
  CHECK(pacer.rows_per_second() == doctest::Approx(1000.0 / 0.15).epsilon(0.01));
}

TEST_CASE("a zero initial size is clamped to the minimum") {
  PacerSettings s = settings();
  s.initial_batch_rows = 0;
  CHECK(BackfillPacer(s).batch_rows() == 10);
}

TEST_CASE("applications waiting on a batch shorten the target, and it grows back without waits") {
  using seedproxy::seeds::ApplicationWaits;
  BackfillPacer pacer(settings());
  for (int i = 0; i < 20; ++i)
    (void)pacer.on_batch(pacer.batch_rows(), cost(pacer.batch_rows(), 10us));
  CHECK(pacer.target() == 100ms);
  // Waits shorter than the budget (10 ms) change nothing.
  CHECK(pacer.on_batch(pacer.batch_rows(), 100ms, ApplicationWaits{3, 9ms, false}) == 50ms);
  CHECK(pacer.target() == 100ms);
  const ApplicationWaits waited{2, 30ms, false};
  // A pause after a batch someone waited on is twice the usual one.
  CHECK(pacer.on_batch(pacer.batch_rows(), 100ms, waited) == 100ms);
  CHECK(pacer.target() == 50ms);
  for (int i = 0; i < 20; ++i)
    (void)pacer.on_batch(pacer.batch_rows(), cost(pacer.batch_rows(), 10us), waited);
  CHECK(pacer.target() == 5ms);  // the floor
  CHECK(pacer.batch_rows() <= 600);
  CHECK(pacer.batch_rows() >= 400);
  for (int i = 0; i < 40; ++i)
    (void)pacer.on_batch(pacer.batch_rows(), cost(pacer.batch_rows(), 10us));
  CHECK(pacer.target() == 100ms);
  CHECK(pacer.batch_rows() >= 9500);
}

TEST_CASE("a batch cancelled for a waiting application halves the target and backs off") {
  BackfillPacer pacer(settings());
  CHECK(pacer.on_cancelled() == 100ms);
  CHECK(pacer.target() == 50ms);
  CHECK(pacer.batch_rows() == 500);
  CHECK(pacer.on_cancelled() == 200ms);
  CHECK(pacer.target() == 25ms);
}
