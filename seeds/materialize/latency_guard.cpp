// The backfill's view of the application's latency (see latency_guard.hpp).
#include "seeds/materialize/latency_guard.hpp"

#include <algorithm>

namespace seedproxy::seeds {

LatencyGuard::LatencyGuard(const ApplicationLatency* latency, LatencyGuardSettings settings)
    : latency_(settings.slow_ratio > 0.0 ? latency : nullptr), settings_(settings) {}

void LatencyGuard::start_window() {
  if (latency_) mark_ = latency_->counts();
}

bool LatencyGuard::end_baseline() {
  if (!latency_) return false;
  return baseline_from(mark_, latency_->counts());
}

bool LatencyGuard::baseline_from(const ApplicationLatency::Counts& earlier,
                                 const ApplicationLatency::Counts& later) {
  if (!latency_) return false;
  baseline_ = latency_quantile(later, earlier, settings_.quantile, settings_.min_samples);
  if (baseline_ && *baseline_ <= 0.0) baseline_.reset();
  mark_ = later;
  return baseline_.has_value();
}

bool LatencyGuard::quiet_since_baseline_began() const {
  return !latency_ || latency_->counts() == mark_;
}

LatencyVerdict LatencyGuard::look() {
  if (!latency_ || !baseline_) return LatencyVerdict::unknown;
  const auto now = latency_->counts();
  const auto window = latency_quantile(now, mark_, settings_.quantile, settings_.min_samples);
  if (!window) return LatencyVerdict::unknown;  // the window keeps growing from the same mark
  mark_ = now;
  last_ratio_ = *window / *baseline_;
  if (*window > slow_limit()) return LatencyVerdict::slow;
  const double relaxed =
      std::max(*baseline_ * settings_.relax_ratio, *baseline_ + settings_.allowance / 2.0);
  if (*window < relaxed) return LatencyVerdict::fine;
  return LatencyVerdict::hold;
}

double LatencyGuard::slow_limit() const noexcept {
  if (!baseline_) return 0.0;
  return std::max(*baseline_ * settings_.slow_ratio, *baseline_ + settings_.allowance);
}

}  // namespace seedproxy::seeds
