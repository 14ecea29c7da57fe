// Unit tests of the clients' latency histogram, its quantiles, the latency guard's verdicts and
// the pacer's answer to them. No database, no sessions: round trips are recorded by hand.
#include "seeds/materialize/latency_guard.hpp"

#include <doctest/doctest.h>

#include "seeds/materialize/backfill_pacer.hpp"
#include "tests/seeds/materialize/recorded_latency.hpp"

using namespace std::chrono_literals;
using seedproxy::seeds::ApplicationLatency;
using seedproxy::seeds::BackfillPacer;
using seedproxy::seeds::latency_quantile;
using seedproxy::seeds::LatencyGuard;
using seedproxy::seeds::LatencyGuardSettings;
using seedproxy::seeds::LatencyVerdict;
using seedproxy::seeds::testing::record;

TEST_CASE("a round trip lands in the bucket whose bounds hold it") {
  for (const std::chrono::nanoseconds ns :
       {1'500ns, 3'000ns, 999'999ns, 1'000'000ns, 3'400'000ns, 120'000'000ns, 7'000'000'000ns}) {
    const std::size_t i = ApplicationLatency::bucket_of(ns);
    const double seconds = std::chrono::duration<double>(ns).count();
    CHECK(seconds < ApplicationLatency::upper_bound(i));
    if (i > 0) CHECK(seconds >= ApplicationLatency::upper_bound(i - 1));
  }
  CHECK(ApplicationLatency::bucket_of(0ns) == 0);
  CHECK(ApplicationLatency::bucket_of(10'000s) == ApplicationLatency::bucket_count - 1);
}

TEST_CASE("the quantile of a window is within a bucket's width of the true one") {
  ApplicationLatency latency;
  const auto before = latency.counts();
  record(latency, 1ms, 990);
  record(latency, 10ms, 10);
  const auto p50 = latency_quantile(latency.counts(), before, 0.5, 100);
  REQUIRE(p50);
  CHECK(*p50 == doctest::Approx(0.001).epsilon(0.25));
  const auto p999 = latency_quantile(latency.counts(), before, 0.999, 100);
  REQUIRE(p999);
  CHECK(*p999 == doctest::Approx(0.010).epsilon(0.25));
  // Too few round trips: no answer.
  CHECK_FALSE(latency_quantile(latency.counts(), before, 0.99, 5000));
}

TEST_CASE("the guard says slow, hold and fine against the baseline") {
  ApplicationLatency latency;
  LatencyGuardSettings settings;
  settings.min_samples = 100;
  LatencyGuard guard(&latency, settings);
  CHECK(guard.look() == LatencyVerdict::unknown);  // no baseline yet
  guard.start_window();
  record(latency, 2ms, 1000);
  REQUIRE(guard.end_baseline());
  record(latency, 4ms, 1000);
  CHECK(guard.look() == LatencyVerdict::slow);
  CHECK(guard.last_ratio() > 1.5);
  record(latency, 2ms, 50);  // too few: the window keeps growing
  CHECK(guard.look() == LatencyVerdict::unknown);
  record(latency, 2ms, 1000);
  CHECK(guard.look() == LatencyVerdict::fine);
  record(latency, 2'400us, 1000);  // 1.2x: between relax and slow
  CHECK(guard.look() == LatencyVerdict::hold);
}

TEST_CASE("an allowance keeps a small rise over a tiny baseline from being slow") {
  ApplicationLatency latency;
  LatencyGuardSettings settings;
  settings.min_samples = 100;
  settings.allowance = 0.002;  // 2 ms
  LatencyGuard guard(&latency, settings);
  guard.start_window();
  record(latency, 500us, 1000);
  REQUIRE(guard.end_baseline());
  CHECK(guard.slow_limit() == doctest::Approx(*guard.baseline_seconds() + 0.002));
  record(latency, 2ms, 1000);  // 4x the baseline, but only 1.5 ms more
  CHECK(guard.look() == LatencyVerdict::hold);
  CHECK(guard.last_ratio() > 3.0);
  record(latency, 1ms, 1000);  // within half the allowance
  CHECK(guard.look() == LatencyVerdict::fine);
  record(latency, 4ms, 1000);  // past both the ratio and the allowance
  CHECK(guard.look() == LatencyVerdict::slow);

  // Over a large baseline the ratio is the larger rise, and decides.
  ApplicationLatency busy;
  LatencyGuard ratio(&busy, settings);
  ratio.start_window();
  record(busy, 20ms, 1000);
  REQUIRE(ratio.end_baseline());
  CHECK(ratio.slow_limit() == doctest::Approx(*ratio.baseline_seconds() * 1.4));
  record(busy, 23ms, 1000);  // 3 ms more, but 1.15x: within the ratio
  CHECK(ratio.look() != LatencyVerdict::slow);
  record(busy, 30ms, 1000);
  CHECK(ratio.look() == LatencyVerdict::slow);
}

TEST_CASE("a guard without enough traffic or turned off never judges") {
  ApplicationLatency latency;
  LatencyGuardSettings settings;
  LatencyGuard quiet(&latency, settings);
  quiet.start_window();
  record(latency, 2ms, 10);
  CHECK_FALSE(quiet.end_baseline());
  record(latency, 50ms, 5000);
  CHECK(quiet.look() == LatencyVerdict::unknown);

  settings.slow_ratio = 0.0;
  LatencyGuard off(&latency, settings);
  off.start_window();
  record(latency, 2ms, 5000);
  CHECK_FALSE(off.end_baseline());
  CHECK(off.look() == LatencyVerdict::unknown);
}

TEST_CASE("the pacer stretches its pauses while the application is slow, then relaxes") {
  BackfillPacer pacer;
  const auto normal = pacer.on_batch(pacer.batch_rows(), 100ms);
  for (int i = 0; i < 3; ++i) pacer.on_latency(LatencyVerdict::slow);
  CHECK(pacer.slowdown() == doctest::Approx(8.0));
  CHECK(pacer.target() < 100ms);
  const auto slowed = pacer.on_batch(pacer.batch_rows(), 100ms);
  CHECK(slowed >= normal * 7);
  for (int i = 0; i < 20; ++i) pacer.on_latency(LatencyVerdict::slow);
  CHECK(pacer.slowdown() == doctest::Approx(64.0));  // capped
  for (int i = 0; i < 40; ++i) pacer.on_latency(LatencyVerdict::fine);
  CHECK(pacer.slowdown() == doctest::Approx(1.0));
  pacer.on_latency(LatencyVerdict::hold);
  CHECK(pacer.slowdown() == doctest::Approx(1.0));
}
