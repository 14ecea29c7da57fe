// The ring of per-second histogram samples (see latency_history.hpp).
#include "seeds/materialize/latency_history.hpp"

#include <algorithm>

namespace seedproxy::seeds {

LatencyHistory::LatencyHistory(const ApplicationLatency& latency, std::size_t kept)
    : latency_(latency), ring_(std::max<std::size_t>(kept, 2)) {}

void LatencyHistory::sample(Clock::time_point now) {
  // Read outside the lock: a relaxed load of every bucket, the lock only for the copy.
  const auto counts = latency_.counts();
  std::lock_guard lock(mutex_);
  ring_[next_] = Sample{now, counts};
  next_ = (next_ + 1) % ring_.size();
  size_ = std::min(size_ + 1, ring_.size());
}

void LatencyHistory::note_batch(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  last_batch_ = std::max(last_batch_, now);
}

std::optional<LatencyHistory::Window> LatencyHistory::window(std::chrono::seconds span,
                                                             Clock::time_point now) const {
  const auto later = latency_.counts();
  std::lock_guard lock(mutex_);
  // Oldest first: the first sample inside the span is the window's start.
  for (std::size_t k = 0; k < size_; ++k) {
    const Sample& sample = ring_[(next_ + ring_.size() - size_ + k) % ring_.size()];
    if (sample.at + span < now || sample.at > now || sample.at <= last_batch_) continue;
    return Window{sample.counts, later, now - sample.at};
  }
  return std::nullopt;
}

}  // namespace seedproxy::seeds
