// The Gradual Materialization Engine's state machine for one seed: runs the steps of
// materialization_steps.hpp in order, persisting its state before and after each step and after
// every batch, so a restarted engine resumes where it stopped. Stop, pause and resume from any
// thread; progress (rows, rate, ETA) readable from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "rewriter/catalog/seed_set.hpp"
#include "seeds/materialize/backfill_pacer.hpp"
#include "seeds/materialize/latency_guard.hpp"
#include "seeds/materialize/latency_history.hpp"
#include "seeds/materialize/lock_wait_watch.hpp"
#include "seeds/materialize/materialization_steps.hpp"
#include "seeds/materialize/progress.hpp"

namespace seedproxy::seeds {

struct MaterializationState {
  MaterializationStep step = MaterializationStep::not_started;
  bool column_added = false;  // the engine added the column: rollback drops it
  bool paused = false;
  Watermark watermark;                   // backfill or verify pass: last key done
  std::uint64_t rows_done = 0;           // keys backfilled (backfilling) or verified (verifying)
  std::uint64_t rows_total = 0;          // estimate taken when the backfill starts
  std::uint64_t rows_updated = 0;        // rows the backfill actually changed
  std::uint64_t rows_repaired = 0;       // rows verify found different and re-ran
  std::uint32_t verify_pass = 0;         // 0-based
  std::uint64_t mismatches_in_pass = 0;  // rows found different in the current verify pass
  std::string error;                     // why the last run failed; empty after a good one
  double rows_per_second = 0.0;          // the pacer's recent rate when the state was saved

  bool operator==(const MaterializationState&) const = default;
};

// Persistence of one seed's state; the registry backs it in production. save() must be durable
// when it returns (the engine acts on the state right after).
class MaterializationStore {
 public:
  virtual ~MaterializationStore() = default;
  [[nodiscard]] virtual std::optional<MaterializationState> load() = 0;
  virtual void save(const MaterializationState& state) = 0;
};

class InMemoryMaterializationStore : public MaterializationStore {
 public:
  [[nodiscard]] std::optional<MaterializationState> load() override;
  void save(const MaterializationState& state) override;
  [[nodiscard]] std::uint64_t saves() const;

 private:
  mutable std::mutex mutex_;
  std::optional<MaterializationState> state_;
  std::uint64_t saves_ = 0;
};

struct MaterializerSettings {
  StepSettings steps;
  PacerSettings pacer;
  std::uint32_t max_verify_passes = 3;  // passes that may still find differences before failing
  // The application's transactions as the proxy's sessions see them, sampled every second (null:
  // not watched), and the guard's thresholds. The baseline is the p99 of the `latency_window`
  // before the run began; when the history holds less than `latency_baseline` of it (a proxy
  // just started) or too few transactions, it is measured for `latency_baseline` before the first
  // batch instead.
  LatencyHistory* latency_history = nullptr;
  LatencyGuardSettings latency;
  std::chrono::seconds latency_window{30};
  std::chrono::milliseconds latency_baseline{1000};
};

// Called when the resolver must change what it emits for the attribute, before the engine goes
// on: Phase::materializing (COALESCE), Phase::materialized (the column), Phase::rolled_back (the
// attribute disappears; called before anything is dropped). Idempotent, like the steps; it may
// be called again after a restart. It returns once every proxy follows (the engine waits for
// their acknowledgements), or early after stop(): the run then returns `stopped` and does the
// step again when resumed. A throw fails the run, which can be retried.
using PhaseSwitch = std::function<void(rewriter::Phase)>;

enum class RunOutcome : std::uint8_t { materialized, rolled_back, stopped, failed };

[[nodiscard]] std::string_view to_string(RunOutcome outcome) noexcept;

struct MaterializationProgress {
  MaterializationStep step = MaterializationStep::not_started;
  bool paused = false;
  std::uint64_t rows_done = 0;
  std::uint64_t rows_total = 0;
  double rows_per_second = 0.0;
  std::optional<double> eta_seconds;  // while backfilling or verifying at a known rate
  double slowdown = 1.0;  // pauses multiplied for the application's latency (1: not slowed)
  std::string error;
};

class Materializer {
 public:
  // `connection` is used only by run() and roll_back(), which must not overlap.
  // `watch` (optional) watches the sessions waiting on each batch's locks: it cancels a batch that
  // keeps one waiting longer than its limit, and the pacer shortens the batches while any wait.
  Materializer(ControlConnection& connection, MaterializationPlan plan, MaterializationStore& store,
               MaterializerSettings settings = {}, PhaseSwitch phase_switch = {},
               LockWaitWatch* watch = nullptr);
  Materializer(const Materializer&) = delete;
  Materializer& operator=(const Materializer&) = delete;

  // Materializes, resuming from the stored state (a stored rolling_back resumes the rollback).
  // Blocks until materialized, stopped, or failed (the error is in progress().error and in the
  // stored state; running again retries the step that failed).
  RunOutcome run();
  // Rolls back from any step: the resolver forgets the attribute first, then the trigger, its
  // function and (if the engine added it) the column are dropped. Blocks; call it after run()
  // has returned (stop() first).
  RunOutcome roll_back();

  // Any thread: the running call returns `stopped` within about a second (a batch in flight is
  // bounded by statement_timeout, waits are sliced). Cleared when run()/roll_back() starts.
  void stop() noexcept;
  // Any thread: backfill and verify wait between batches until resume(); persisted.
  void pause() noexcept;
  void resume() noexcept;
  // Whether stop() was called since run()/roll_back() began (a PhaseSwitch waiting gives up).
  [[nodiscard]] bool stopping() const noexcept { return stop_.load(); }

  [[nodiscard]] MaterializationProgress progress() const;
  [[nodiscard]] const MaterializationPlan& plan() const noexcept { return plan_; }

 private:
  void enter(MaterializationStep step);
  void save();
  // false when stopped while waiting
  bool wait(std::chrono::milliseconds duration);
  bool wait_while_paused();
  enum class BatchStep : std::uint8_t {
    advanced,  // the watermark moved past the batch
    ended,     // the backfill or the verify pass reached the last key
    held,      // verify: rows still differ after the repair (held by another transaction)
  };
  // One backfill or verify batch of up to `limit` keys (`rows` of them).
  BatchStep step_batch(bool verifying, std::uint64_t limit, std::uint64_t& rows);
  BatchStep verify_step(std::uint64_t limit, std::uint64_t& rows);
  // One batch with its pacing and pause; false when stopped.
  bool run_batch(BackfillPacer& pacer, LatencyGuard& guard);
  // The baseline from the history of the clients' latency before the run; false without one.
  bool baseline_from_history(LatencyGuard& guard);
  bool measure_latency_baseline(LatencyGuard& guard);
  void publish(const BackfillPacer* pacer);

  ControlConnection& connection_;
  MaterializationPlan plan_;
  MaterializationStore& store_;
  MaterializerSettings settings_;
  PhaseSwitch phase_switch_;
  LockWaitWatch* watch_;
  MaterializationState state_;
  std::uint32_t held_without_skips_ =
      0;  // verify: consecutive batches that repaired every row
          // they found and still found some  // owned by the thread in run()/roll_back()

  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_requested_{false};
  mutable std::mutex mutex_;  // guards progress_; the condition variable wakes waits
  std::condition_variable wake_;
  MaterializationProgress progress_;
};

}  // namespace seedproxy::seeds
