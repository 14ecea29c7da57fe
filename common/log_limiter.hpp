// Rate limiting for log lines that an outsider can repeat at will (a refused client, a failed
// accept): at most `burst` lines per window, the rest counted and reported with the next line.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>

#include "common/log.hpp"

namespace seedproxy::log {

class RepeatLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  explicit RepeatLimiter(std::uint32_t burst = 10,
                         Clock::duration window = std::chrono::seconds(10)) noexcept
      : burst_(burst), window_(window) {}

  // nullopt: hold this line back (it is counted). Otherwise let it through; the value is the
  // number of lines held back since the last one let through.
  [[nodiscard]] std::optional<std::uint64_t> admit(Clock::time_point now = Clock::now());

 private:
  std::mutex mutex_;
  const std::uint32_t burst_;
  const Clock::duration window_;
  Clock::time_point window_start_{};
  std::uint32_t in_window_ = 0;
  std::uint64_t suppressed_ = 0;
  bool started_ = false;
};

// write() through `limiter`: a line let through after some were held back ends with
// " (N similar lines suppressed)".
void limited(RepeatLimiter& limiter, Level level, std::string_view component,
             std::string_view message);

}  // namespace seedproxy::log
