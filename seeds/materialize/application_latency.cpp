// The round-trip histogram's buckets and quantiles (see application_latency.hpp).
#include "seeds/materialize/application_latency.hpp"

#include <bit>
#include <cmath>

namespace seedproxy::seeds {

std::size_t ApplicationLatency::bucket_of(std::chrono::nanoseconds elapsed) noexcept {
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(elapsed.count(), 0));
  const unsigned width = static_cast<unsigned>(std::bit_width(ns));  // ns < 2^width
  if (width <= first_octave) return 0;
  const unsigned octave = width - 1 - first_octave;  // ns in [2^(width-1), 2^width)
  if (octave >= octaves) return bucket_count - 1;
  // The two bits below the leading one pick the quarter of the octave.
  const auto quarter = static_cast<unsigned>((ns >> (width - 3)) & (sub_buckets - 1));
  return std::size_t{octave} * sub_buckets + quarter;
}

double ApplicationLatency::upper_bound(std::size_t index) noexcept {
  const auto octave = static_cast<double>(index / sub_buckets);
  const auto quarter = static_cast<double>(index % sub_buckets);
  const double low = std::ldexp(1.0, static_cast<int>(first_octave) + static_cast<int>(octave));
  return low * (1.0 + (quarter + 1.0) / sub_buckets) * 1e-9;
}

ApplicationLatency::Counts ApplicationLatency::counts() const noexcept {
  Counts out{};
  for (std::size_t i = 0; i < bucket_count; ++i)
    out[i] = buckets_[i].load(std::memory_order_relaxed);
  return out;
}

std::optional<double> latency_quantile(const ApplicationLatency::Counts& later,
                                       const ApplicationLatency::Counts& earlier, double q,
                                       std::uint64_t min_samples) {
  ApplicationLatency::Counts window{};
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < window.size(); ++i) {
    window[i] = later[i] >= earlier[i] ? later[i] - earlier[i] : 0;
    total += window[i];
  }
  if (total == 0 || total < min_samples) return std::nullopt;
  const double rank = q * static_cast<double>(total);
  double below = 0.0;
  for (std::size_t i = 0; i < window.size(); ++i) {
    const auto here = static_cast<double>(window[i]);
    if (below + here >= rank && here > 0.0) {
      const double low = i == 0 ? 0.0 : ApplicationLatency::upper_bound(i - 1);
      const double high = ApplicationLatency::upper_bound(i);
      return low + (high - low) * (rank - below) / here;
    }
    below += here;
  }
  return ApplicationLatency::upper_bound(window.size() - 1);
}

}  // namespace seedproxy::seeds
