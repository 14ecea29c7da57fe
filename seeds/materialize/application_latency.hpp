// What the proxy's clients wait for each transaction (from the first message out of idle to the
// ReadyForQuery that says idle again; one autocommit statement is one), kept
// in a fine histogram that sessions fill from any I/O thread and the materializer reads, so a
// backfill can slow down when it makes the application slower (latency_guard.hpp).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace seedproxy::seeds {

class ApplicationLatency {
 public:
  // Four buckets per power of two of nanoseconds (each about 19 % wide), from 1 µs to 2^36 ns
  // (about 69 s); shorter and longer times go to the first and the last bucket.
  static constexpr unsigned sub_buckets = 4;
  static constexpr unsigned first_octave = 10;  // 2^10 ns ≈ 1 µs
  static constexpr unsigned octaves = 26;
  static constexpr std::size_t bucket_count = std::size_t{octaves} * sub_buckets;
  using Counts = std::array<std::uint64_t, bucket_count>;

  ApplicationLatency() = default;
  ApplicationLatency(const ApplicationLatency&) = delete;
  ApplicationLatency& operator=(const ApplicationLatency&) = delete;

  // One transaction; a relaxed increment, safe from any thread.
  void record(std::chrono::nanoseconds elapsed) noexcept {
    buckets_[bucket_of(elapsed)].fetch_add(1, std::memory_order_relaxed);
  }
  // Every bucket's count so far; the difference of two is the histogram of the time between.
  [[nodiscard]] Counts counts() const noexcept;

  [[nodiscard]] static std::size_t bucket_of(std::chrono::nanoseconds elapsed) noexcept;
  // The upper bound of bucket `index`, in seconds.
  [[nodiscard]] static double upper_bound(std::size_t index) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
};

// The `q` quantile (0 < q < 1), in seconds, of the transactions counted between `earlier` and
// `later`, interpolated within its bucket; nothing when fewer than `min_samples` were counted.
[[nodiscard]] std::optional<double> latency_quantile(const ApplicationLatency::Counts& later,
                                                     const ApplicationLatency::Counts& earlier,
                                                     double q, std::uint64_t min_samples);

}  // namespace seedproxy::seeds
