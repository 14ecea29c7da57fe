// Pairs each client Query, Sync or FunctionCall with the ReadyForQuery that answers it, in order,
// so pipelined round trips are timed correctly; one per session, used from its thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>

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
    if (queue_.size() < max_timed) {
      queue_.push_back({kind, now, false, 0});
    } else {
      ++queue_.back().untimed_after;
    }
  }

  // A ReadyForQuery arrived from the server. Empty when it answers nothing timed: the one that
  // ends the startup, or a round trip past max_timed.
  [[nodiscard]] std::optional<Finished> ready(Clock::time_point now = Clock::now()) {
    if (queue_.empty()) return std::nullopt;
    Entry& front = queue_.front();
    std::optional<Finished> result;
    if (!front.answered) {
      front.answered = true;
      result = Finished{front.kind, now - front.start};
    } else {
      --front.untimed_after;
    }
    if (front.untimed_after == 0) queue_.pop_front();
    return result;
  }

  // The server entered COPY IN (CopyInResponse or CopyBothResponse). PostgreSQL ignores a Sync
  // received in copy-in mode, so the Syncs still waiting get no ReadyForQuery of their own: every
  // earlier round trip was answered before the server started the copy, hence the waiting Syncs
  // at the back were sent after the copy's Execute (libpq sends one right after it) and are
  // dropped. The Sync sent after CopyDone is the one the server answers.
  void copy_in_started() {
    while (!queue_.empty() && queue_.back().kind == StatementKind::extended_sync &&
           !queue_.back().answered && queue_.back().untimed_after == 0)
      queue_.pop_back();
  }

  // Round trips still waiting for their ReadyForQuery (timed or not).
  [[nodiscard]] std::uint64_t pending() const noexcept {
    std::uint64_t total = 0;
    for (const Entry& entry : queue_) total += (entry.answered ? 0 : 1) + entry.untimed_after;
    return total;
  }

 private:
  struct Entry {
    StatementKind kind;
    Clock::time_point start;
    bool answered;
    std::uint64_t untimed_after;  // round trips started after this one while the queue was full
  };
  std::deque<Entry> queue_;
};

}  // namespace seedproxy::proxy
