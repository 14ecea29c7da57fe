// Pacing of the materializer's backfill: how many rows the next batch takes and how long to pause
// after it, adapted to a target batch duration and backing off when the database is busy. Pure
// arithmetic on measured durations, so it is unit-tested without a database.
#pragma once

#include <chrono>
#include <cstdint>

namespace seedproxy::seeds {

struct PacerSettings {
  std::uint64_t initial_batch_rows = 1000;
  std::uint64_t min_batch_rows = 10;
  std::uint64_t max_batch_rows = 100000;
  // A batch holds its rows' locks for its whole duration: writers touching them wait that long.
  std::chrono::milliseconds target_batch{100};
  // Pause after a batch, as a fraction of its duration (0.5: the backfill uses at most 2/3 of
  // one backend's time), never shorter than min_pause.
  double pause_ratio = 0.5;
  std::chrono::milliseconds min_pause{5};
  // Back-off after a lock wait, statement timeout or error: initial, doubled per consecutive
  // failure, capped.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
};

class BackfillPacer {
 public:
  explicit BackfillPacer(PacerSettings settings = {});

  // Rows the next batch should cover.
  [[nodiscard]] std::uint64_t batch_rows() const noexcept { return batch_rows_; }

  // A batch of `rows` rows finished in `elapsed`. Adapts the size toward the target duration
  // (at most doubling or halving per batch) and returns the pause before the next one. A batch
  // that took much longer than the target means a busy database: the pause grows with it.
  std::chrono::milliseconds on_batch(std::uint64_t rows, std::chrono::nanoseconds elapsed);

  // A batch gave up (lock wait, statement timeout, serialization failure): halves the size and
  // returns an exponentially growing back-off.
  std::chrono::milliseconds on_busy();

  // Rows per second over batches and pauses (exponential moving average), 0 before any batch.
  [[nodiscard]] double rows_per_second() const noexcept { return rows_per_second_; }
  [[nodiscard]] std::uint32_t consecutive_busy() const noexcept { return consecutive_busy_; }

 private:
  PacerSettings settings_;
  std::uint64_t batch_rows_;
  std::uint32_t consecutive_busy_ = 0;
  std::chrono::nanoseconds last_pause_{0};
  double rows_per_second_ = 0.0;
};

}  // namespace seedproxy::seeds
