// The clients' transaction-time histogram as it stood at each of the last seconds, so the
// materializer can take the application's latency over a window that ended before the
// materialization began (and before its write trigger cost anything), instead of waiting for a
// fresh one (docs/materialization.md, "Pacing").
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

#include "seeds/materialize/application_latency.hpp"

namespace seedproxy::seeds {

class LatencyHistory {
 public:
  using Clock = std::chrono::steady_clock;

  // Keeps the last `kept` samples (at one a second, `kept` seconds; at least 2).
  explicit LatencyHistory(const ApplicationLatency& latency, std::size_t kept = 64);
  LatencyHistory(const LatencyHistory&) = delete;
  LatencyHistory& operator=(const LatencyHistory&) = delete;

  // Records the histogram as it is at `now`; the proxy calls it about once a second. Any thread.
  void sample(Clock::time_point now = Clock::now());

  // A backfill ran a batch at `now`: later windows start after it, so one materialization's
  // cost never becomes part of the next one's baseline. Any thread.
  void note_batch(Clock::time_point now = Clock::now());

  struct Window {
    ApplicationLatency::Counts earlier{};
    ApplicationLatency::Counts later{};  // the histogram when window() was called
    std::chrono::duration<double> span{0.0};
  };
  // The histogram now and as it was at the oldest sample no more than `span` before `now` and
  // after the last batch noted: their difference holds the transactions of (about) the last
  // `span` with no backfill running. Nothing while no sample qualifies. Any thread.
  [[nodiscard]] std::optional<Window> window(std::chrono::seconds span,
                                             Clock::time_point now = Clock::now()) const;

  [[nodiscard]] const ApplicationLatency& latency() const noexcept { return latency_; }

 private:
  struct Sample {
    Clock::time_point at;
    ApplicationLatency::Counts counts{};
  };

  const ApplicationLatency& latency_;
  mutable std::mutex mutex_;  // guards ring_, next_, size_ and last_batch_
  std::vector<Sample> ring_;
  std::size_t next_ = 0;  // where the next sample goes
  std::size_t size_ = 0;  // samples held, at most ring_.size()
  Clock::time_point last_batch_{};
};

}  // namespace seedproxy::seeds
