// Batch size and pause arithmetic for the backfill (see backfill_pacer.hpp).
#include "seeds/materialize/backfill_pacer.hpp"

#include <algorithm>
#include <cmath>

namespace seedproxy::seeds {

namespace {

std::uint64_t clamp_rows(double rows, const PacerSettings& settings) {
  const double low = static_cast<double>(std::max<std::uint64_t>(1, settings.min_batch_rows));
  const double high =
      static_cast<double>(std::max(settings.min_batch_rows, settings.max_batch_rows));
  return static_cast<std::uint64_t>(std::llround(std::clamp(rows, low, high)));
}

}  // namespace

BackfillPacer::BackfillPacer(PacerSettings settings)
    : settings_(settings),
      batch_rows_(clamp_rows(static_cast<double>(settings.initial_batch_rows), settings)),
      target_(settings.target_batch) {}

void BackfillPacer::shorten_target() {
  target_ = std::max(std::min(settings_.min_target_batch, settings_.target_batch), target_ / 2);
}

std::chrono::milliseconds BackfillPacer::on_batch(std::uint64_t rows,
                                                  std::chrono::nanoseconds elapsed,
                                                  const ApplicationWaits& waits) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  consecutive_busy_ = 0;
  const bool waited = waits.waiters > 0 && waits.longest >= settings_.wait_budget;
  if (waited)
    shorten_target();
  else
    target_ = std::min(settings_.target_batch,
                       std::max(target_ + target_ / 4, target_ + milliseconds(1)));
  const double seconds = std::max(1e-6, std::chrono::duration<double>(elapsed).count());
  const double target = std::chrono::duration<double>(target_).count();

  // Only a full batch says how long batch_rows_ rows take; a short last batch says nothing about
  // growing, but a slow one still says "smaller".
  if (rows > 0 && (rows >= batch_rows_ || seconds > target)) {
    const double per_row = seconds / static_cast<double>(rows);
    double wanted = target / per_row;
    const double current = static_cast<double>(batch_rows_);
    wanted = std::clamp(wanted, current / 2.0, current * 2.0);
    batch_rows_ = clamp_rows(wanted, settings_);
  }

  const double ratio = settings_.pause_ratio * (waited ? 2.0 : 1.0) * slowdown_;
  const auto pause =
      std::max(settings_.min_pause,
               duration_cast<milliseconds>(std::chrono::duration<double>(seconds * ratio)));
  const double cycle = seconds + std::chrono::duration<double>(last_pause_).count();
  const double rate = static_cast<double>(rows) / cycle;
  rows_per_second_ = rows_per_second_ == 0.0 ? rate : 0.7 * rows_per_second_ + 0.3 * rate;
  last_pause_ = duration_cast<nanoseconds>(pause);
  return pause;
}

void BackfillPacer::on_latency(LatencyVerdict verdict) {
  switch (verdict) {
    case LatencyVerdict::slow:
      slowdown_ = std::min(settings_.max_slowdown, slowdown_ * 2.0);
      shorten_target();
      break;
    case LatencyVerdict::fine:
      slowdown_ = std::max(1.0, slowdown_ * 2.0 / 3.0);
      break;
    case LatencyVerdict::hold:
    case LatencyVerdict::unknown:
      break;
  }
}

std::chrono::milliseconds BackfillPacer::on_busy() {
  batch_rows_ = clamp_rows(static_cast<double>(batch_rows_) / 2.0, settings_);
  const std::uint32_t doublings = std::min<std::uint32_t>(consecutive_busy_, 20);
  ++consecutive_busy_;
  const auto backoff = settings_.backoff_initial * (std::int64_t{1} << doublings);
  const auto pause = std::min<std::chrono::milliseconds>(backoff, settings_.backoff_max);
  last_pause_ = pause;
  return pause;
}

std::chrono::milliseconds BackfillPacer::on_cancelled() {
  shorten_target();
  return on_busy();
}

}  // namespace seedproxy::seeds
