// Compares the application's round-trip latency while a backfill runs with the latency just
// before it, so the pacer can slow the backfill down when the application feels it
// (docs/materialization.md, "Pacing").
#pragma once

#include <cstdint>
#include <optional>

#include "seeds/materialize/application_latency.hpp"

namespace seedproxy::seeds {

struct LatencyGuardSettings {
  // The backfill slows down while the window's p99 is above this multiple of the baseline's, and
  // speeds up again below `relax_ratio` of it. 0 turns the guard off.
  double slow_ratio = 1.4;
  double relax_ratio = 1.1;
  // A rise no larger than this (seconds) is never slow, whatever the ratio, and up to half of it
  // counts as fine: a sub-millisecond baseline would otherwise read every busy moment of a small
  // machine as a collapse and hold the backfill at its slowest. 0: the ratios alone decide.
  double allowance = 0.0;
  double quantile = 0.99;
  // Fewer transactions than this in a window say nothing: the window grows until it has them (a
  // quiet application has little to protect, and its p99 would be one unlucky query).
  std::uint64_t min_samples = 400;
};

enum class LatencyVerdict : std::uint8_t { unknown, fine, hold, slow };

class LatencyGuard {
 public:
  // `latency` may be null (no sessions report, e.g. in unit tests): every look is `unknown`.
  LatencyGuard(const ApplicationLatency* latency, LatencyGuardSettings settings);

  // The window that the next end_baseline() or look() measures starts now: before a baseline
  // measured on the spot (while no batch runs), or at the first batch after a baseline taken
  // from the history (adding the column and the trigger is no batch's doing).
  void start_window();
  // Whether the baseline window had enough transactions; without one, looks say `unknown`.
  bool end_baseline();
  // The baseline from a window measured elsewhere (LatencyHistory): the transactions counted
  // between `earlier` and `later`. Whether it had enough; the next look starts a new window.
  bool baseline_from(const ApplicationLatency::Counts& earlier,
                     const ApplicationLatency::Counts& later);
  // No transaction at all since start_window().
  [[nodiscard]] bool quiet_since_baseline_began() const;
  [[nodiscard]] bool has_baseline() const noexcept { return baseline_.has_value(); }
  [[nodiscard]] std::optional<double> baseline_seconds() const noexcept { return baseline_; }

  // The window since the last verdict (or since the baseline): `slow` when its quantile is above
  // slow_limit(), `fine` below max(relax_ratio × baseline, baseline + allowance / 2), `hold`
  // between, `unknown` while the window is too small (it keeps growing).
  LatencyVerdict look();
  // The quantile above which a window is slow: max(slow_ratio × baseline, baseline + allowance);
  // 0 without a baseline.
  [[nodiscard]] double slow_limit() const noexcept;
  // The last window's quantile over the baseline's, 0 before any.
  [[nodiscard]] double last_ratio() const noexcept { return last_ratio_; }

 private:
  const ApplicationLatency* latency_;
  LatencyGuardSettings settings_;
  ApplicationLatency::Counts mark_{};
  std::optional<double> baseline_;
  double last_ratio_ = 0.0;
};

}  // namespace seedproxy::seeds
