// RepeatLimiter on a clock the test moves: a burst per window, the rest counted, the count
// handed to the first line let through afterwards.
#include "common/log_limiter.hpp"

#include <doctest/doctest.h>

#include <chrono>

using seedproxy::log::RepeatLimiter;
using namespace std::chrono_literals;

TEST_CASE("the first burst of a window is let through, the rest only counted") {
  RepeatLimiter limiter(3, 10s);
  const auto t0 = RepeatLimiter::Clock::time_point{} + 100s;
  for (int i = 0; i < 3; ++i) CHECK(limiter.admit(t0 + std::chrono::milliseconds(i)) == 0u);
  for (int i = 0; i < 2000; ++i) CHECK_FALSE(limiter.admit(t0 + 1s).has_value());
  // The next window lets a line through carrying the count, then counts afresh.
  CHECK(limiter.admit(t0 + 10s) == 2000u);
  CHECK(limiter.admit(t0 + 11s) == 0u);
  CHECK(limiter.admit(t0 + 12s) == 0u);
  CHECK_FALSE(limiter.admit(t0 + 13s).has_value());
  CHECK(limiter.admit(t0 + 25s) == 1u);
}

TEST_CASE("2,000 refusals in one window make `burst` lines") {
  RepeatLimiter limiter;  // the defaults the proxy uses: 10 lines per 10 s
  const auto t0 = RepeatLimiter::Clock::time_point{} + 1h;
  int written = 0;
  for (int i = 0; i < 2000; ++i)
    if (limiter.admit(t0 + std::chrono::milliseconds(i))) ++written;
  CHECK(written == 10);
}
