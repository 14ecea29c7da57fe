// A fixed window per limiter: the first `burst` lines of each window are written, the others
// only counted; the count rides on the first line written afterwards.
#include "common/log_limiter.hpp"

#include <string>

namespace seedproxy::log {

std::optional<std::uint64_t> RepeatLimiter::admit(Clock::time_point now) {
  const std::lock_guard lock(mutex_);
  if (!started_ || now - window_start_ >= window_) {
    started_ = true;
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++suppressed_;
    return std::nullopt;
  }
  ++in_window_;
  const std::uint64_t held_back = suppressed_;
  suppressed_ = 0;
  return held_back;
}

void limited(RepeatLimiter& limiter, Level level, std::string_view component,
             std::string_view message) {
  if (!enabled(level)) return;
  const auto held_back = limiter.admit();
  if (!held_back) return;
  if (*held_back == 0) {
    write(level, component, message);
    return;
  }
  std::string line(message);
  line += " (" + std::to_string(*held_back) + " similar line" + (*held_back == 1 ? "" : "s") +
          " suppressed)";
  write(level, component, line);
}

}  // namespace seedproxy::log
