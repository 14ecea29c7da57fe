// Unit tests of the per-second history of the clients' latency and of a guard whose baseline comes
// from it. No database: transactions are recorded by hand, and the clock is passed in.
#include "seeds/materialize/latency_history.hpp"

#include <doctest/doctest.h>

#include "seeds/materialize/latency_guard.hpp"
#include "tests/seeds/materialize/recorded_latency.hpp"

using namespace std::chrono_literals;
using seedproxy::seeds::ApplicationLatency;
using seedproxy::seeds::latency_quantile;
using seedproxy::seeds::LatencyGuard;
using seedproxy::seeds::LatencyGuardSettings;
using seedproxy::seeds::LatencyHistory;
using seedproxy::seeds::LatencyVerdict;
using seedproxy::seeds::testing::record;

namespace {

// The p99 of a window, in milliseconds.
double p99_ms(const LatencyHistory::Window& window) {
  const auto p99 = latency_quantile(window.later, window.earlier, 0.99, 1);
  REQUIRE(p99);
  return *p99 * 1000.0;
}

}  // namespace

TEST_CASE("a window holds the transactions of the seconds it spans, no older ones") {
  ApplicationLatency latency;
  LatencyHistory history(latency, 8);
  const auto t0 = LatencyHistory::Clock::time_point{} + 1000s;
  CHECK_FALSE(history.window(30s, t0));  // no sample yet
  record(latency, 50ms, 1000);           // a slow spell, long ago
  for (int second = 0; second <= 40; ++second) {
    history.sample(t0 + std::chrono::seconds(second));
    if (second >= 5) record(latency, 2ms, 100);
  }
  const auto now = t0 + 40s;
  const auto window = history.window(30s, now);
  REQUIRE(window);
  // The ring keeps 8 samples: the oldest within 30 s is the one of second 33.
  CHECK(window->span.count() == doctest::Approx(7.0));
  CHECK(p99_ms(*window) == doctest::Approx(2.0).epsilon(0.25));
  // A longer ring reaches the whole 30 s, still without the slow spell.
  LatencyHistory longer(latency, 64);
  for (int second = 0; second <= 40; ++second) longer.sample(t0 + std::chrono::seconds(second));
  const auto wide = longer.window(30s, now);
  REQUIRE(wide);
  CHECK(wide->span.count() == doctest::Approx(30.0));
  // Every sample older than the span: nothing.
  CHECK_FALSE(history.window(30s, now + 100s));
  // A batch of an earlier materialization at second 36: the window starts after it.
  longer.note_batch(t0 + 36s + 500ms);
  const auto after_batch = longer.window(30s, now);
  REQUIRE(after_batch);
  CHECK(after_batch->span.count() == doctest::Approx(3.0));
  longer.note_batch(now);
  CHECK_FALSE(longer.window(30s, now));
}

TEST_CASE("a guard paces on a baseline from the history and a window from the first batch") {
  ApplicationLatency latency;
  LatencyHistory history(latency);
  const auto t0 = LatencyHistory::Clock::time_point{} + 1000s;
  for (int second = 0; second < 10; ++second) {
    record(latency, 2ms, 100);
    history.sample(t0 + std::chrono::seconds(second));
  }
  const auto window = history.window(30s, t0 + 10s);
  REQUIRE(window);
  LatencyGuardSettings settings;
  settings.min_samples = 100;
  LatencyGuard guard(&latency, settings);
  REQUIRE(guard.baseline_from(window->earlier, window->later));
  CHECK(*guard.baseline_seconds() * 1000.0 == doctest::Approx(2.0).epsilon(0.25));
  // Between the baseline and the first batch (the column and the trigger go in) the clients were
  // slow; the first window starts at the batch, so that is nobody's verdict.
  record(latency, 20ms, 1000);
  guard.start_window();
  record(latency, 2ms, 1000);
  CHECK(guard.look() == LatencyVerdict::fine);
  record(latency, 4ms, 1000);
  CHECK(guard.look() == LatencyVerdict::slow);
  // Too few transactions in the history: no baseline.
  ApplicationLatency quiet;
  LatencyGuard unsure(&quiet, settings);
  const auto before = quiet.counts();
  record(quiet, 2ms, 10);
  CHECK_FALSE(unsure.baseline_from(before, quiet.counts()));
}
