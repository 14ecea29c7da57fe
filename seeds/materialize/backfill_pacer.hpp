// Pacing of the materializer's backfill: how many rows the next batch takes and how long to pause
// after it, adapted to a target batch duration, shortened while applications wait on the batches'
// rows or their latency rises, and backing off when the database is busy. Pure arithmetic on
// measured durations, so it is unit-tested without a database.
#pragma once

#include <chrono>
#include <cstdint>

#include "seeds/materialize/latency_guard.hpp"

namespace seedproxy::seeds {

// What the application paid for one batch: sessions seen waiting on one of its locks (the most at
// one look), the longest such wait, and whether the batch was cancelled because of it
// (lock_wait_watch.hpp).
struct ApplicationWaits {
  std::uint32_t waiters = 0;
  std::chrono::milliseconds longest{0};
  bool cancelled = false;
};

struct PacerSettings {
  std::uint64_t initial_batch_rows = 1000;
  std::uint64_t min_batch_rows = 10;
  std::uint64_t max_batch_rows = 100000;
  // A batch holds its rows' locks for its whole duration: writers touching them wait that long.
  std::chrono::milliseconds target_batch{100};
  // A batch that made an application wait this long or longer halves the target (down to
  // min_target_batch) and doubles its pause; a batch that made nobody wait that long grows the
  // target back by a quarter. Shorter waits are left alone: they cost the application less than
  // the commits and pauses of smaller batches would.
  std::chrono::milliseconds wait_budget{10};
  std::chrono::milliseconds min_target_batch{5};
  // Pause after a batch, as a fraction of its duration (0.5: the backfill uses at most 2/3 of
  // one backend's time), never shorter than min_pause.
  double pause_ratio = 0.5;
  std::chrono::milliseconds min_pause{5};
  // Back-off after a lock wait, statement timeout or error: initial, doubled per consecutive
  // failure, capped.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  // While the application's latency is above what the latency guard allows, each look doubles a
  // slowdown factor that multiplies the pause (up to this), and halves the target duration;
  // while it is back to normal, the factor shrinks by a third per look.
  double max_slowdown = 64.0;
};

class BackfillPacer {
 public:
  explicit BackfillPacer(PacerSettings settings = {});

  // Rows the next batch should cover.
  [[nodiscard]] std::uint64_t batch_rows() const noexcept { return batch_rows_; }

  // A batch of `rows` rows finished in `elapsed`. Adapts the size toward the target duration
  // (at most doubling or halving per batch) and returns the pause before the next one. A batch
  // that took much longer than the target means a busy database: the pause grows with it.
  // An application that waited on the batch for wait_budget or longer halves the target duration
  // and doubles the pause.
  std::chrono::milliseconds on_batch(std::uint64_t rows, std::chrono::nanoseconds elapsed,
                                     const ApplicationWaits& waits = {});

  // A batch gave up (lock wait, statement timeout, serialization failure): halves the size and
  // returns an exponentially growing back-off.
  std::chrono::milliseconds on_busy();
  // A batch was cancelled because an application waited on it too long: as on_busy(), and the
  // target duration is halved.
  std::chrono::milliseconds on_cancelled();
  // What the latency guard said about the window that ended with the last batch.
  void on_latency(LatencyVerdict verdict);
  // The factor the pauses are multiplied by for the application's latency (1: not slowed).
  [[nodiscard]] double slowdown() const noexcept { return slowdown_; }

  // The batch duration the size is adapted to now (target_batch unless applications waited).
  [[nodiscard]] std::chrono::milliseconds target() const noexcept { return target_; }

  // Rows per second over batches and pauses (exponential moving average), 0 before any batch.
  [[nodiscard]] double rows_per_second() const noexcept { return rows_per_second_; }
  [[nodiscard]] std::uint32_t consecutive_busy() const noexcept { return consecutive_busy_; }

 private:
  void shorten_target();

  PacerSettings settings_;
  std::uint64_t batch_rows_;
  std::chrono::milliseconds target_;
  std::uint32_t consecutive_busy_ = 0;
  std::chrono::nanoseconds last_pause_{0};
  double rows_per_second_ = 0.0;
  double slowdown_ = 1.0;
};

}  // namespace seedproxy::seeds
