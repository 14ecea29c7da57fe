// Pairs each client Query, Sync or FunctionCall with the ReadyForQuery that answers it, in order,
// so pipelined round trips are timed correctly; one per session, used from its thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "proxy/observe/observer.hpp"

namespace seedproxy::proxy {

class StatementTimer {
 public:
  using Clock = std::chrono::steady_clock;
  // Round trips pipelined beyond this many are counted but not timed, so a client that never
  // reads cannot grow the queue without bound.
  static constexpr std::size_t max_timed = 1024;

  struct Finished {
    StatementKind kind;
    Clock::duration elapsed;
  };

  // The client sent a message that PostgreSQL will answer with exactly one ReadyForQuery.
  void started(StatementKind kind, Clock::time_point now = Clock::now()) {
    if (size_ < max_timed) {
      if (size_ == ring_.size()) grow();
      ring_[(head_ + size_++) & (ring_.size() - 1)] = {now, 0, kind, false};
    } else {
      ++back().untimed_after;
    }
  }

  // A ReadyForQuery arrived from the server. Empty when it answers nothing timed: the one that
  // ends the startup, or a round trip past max_timed.
  [[nodiscard]] std::optional<Finished> ready(Clock::time_point now = Clock::now()) {
    if (size_ == 0) return std::nullopt;
    Entry& front = ring_[head_];
    std::optional<Finished> result;
    if (!front.answered) {
      front.answered = true;
      result = Finished{front.kind, now - front.start};
    } else {
      --front.untimed_after;
    }
    if (front.untimed_after == 0) {
      head_ = (head_ + 1) & (ring_.size() - 1);
      --size_;
    }
    return result;
  }

  // The server entered COPY IN (CopyInResponse or CopyBothResponse). PostgreSQL ignores a Sync
  // received in copy-in mode, so the Syncs still waiting get no ReadyForQuery of their own: every
  // earlier round trip was answered before the server started the copy, hence the waiting Syncs
  // at the back were sent after the copy's Execute (libpq sends one right after it) and are
  // dropped. The Sync sent after CopyDone is the one the server answers.
  void copy_in_started() {
    while (size_ > 0 && back().kind == StatementKind::extended_sync && !back().answered &&
           back().untimed_after == 0)
      --size_;
  }

  // Round trips still waiting for their ReadyForQuery (timed or not).
  [[nodiscard]] std::uint64_t pending() const noexcept {
    std::uint64_t total = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      const Entry& entry = ring_[(head_ + i) & (ring_.size() - 1)];
      total += (entry.answered ? 0 : 1) + entry.untimed_after;
    }
    return total;
  }

 private:
  struct Entry {  // 24 bytes: one fits malloc's smallest chunk
    Clock::time_point start;
    std::uint64_t untimed_after;  // round trips started after this one while the queue was full
    StatementKind kind;
    bool answered;
  };
  [[nodiscard]] Entry& back() noexcept { return ring_[(head_ + size_ - 1) & (ring_.size() - 1)]; }
  // Twice the room (a power of two, so positions wrap with a mask), the entries moved to the front.
  void grow() {
    std::vector<Entry> bigger(ring_.empty() ? 1 : ring_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
    ring_ = std::move(bigger);
    head_ = 0;
  }
  // A ring in a vector rather than a std::deque, which allocates 576 bytes when constructed:
  // every session has a timer, and one that is not pipelining holds a single entry (room for one
  // until it pipelines).
  std::vector<Entry> ring_;
  std::size_t head_ = 0;  // the oldest entry
  std::size_t size_ = 0;
};

}  // namespace seedproxy::proxy
