// The materialization state machine (see materializer.hpp): step order, persistence, pacing,
// stop/pause/resume and progress.
#include "seeds/materialize/materializer.hpp"

#include <utility>

#include "common/log.hpp"

namespace seedproxy::seeds {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

std::string_view to_string(RunOutcome outcome) noexcept {
  switch (outcome) {
    case RunOutcome::materialized:
      return "materialized";
    case RunOutcome::rolled_back:
      return "rolled_back";
    case RunOutcome::stopped:
      return "stopped";
    case RunOutcome::failed:
      return "failed";
  }
  return "unknown";
}

std::optional<MaterializationState> InMemoryMaterializationStore::load() {
  std::lock_guard lock(mutex_);
  return state_;
}

void InMemoryMaterializationStore::save(const MaterializationState& state) {
  std::lock_guard lock(mutex_);
  state_ = state;
  ++saves_;
}

std::uint64_t InMemoryMaterializationStore::saves() const {
  std::lock_guard lock(mutex_);
  return saves_;
}

Materializer::Materializer(ControlConnection& connection, MaterializationPlan plan,
                           MaterializationStore& store, MaterializerSettings settings,
                           PhaseSwitch phase_switch, LockWaitWatch* watch)
    : connection_(connection),
      plan_(std::move(plan)),
      store_(store),
      settings_(std::move(settings)),
      phase_switch_(std::move(phase_switch)),
      watch_(watch) {
  state_ = store_.load().value_or(MaterializationState{});
  pause_requested_ = state_.paused;
  publish(nullptr);
}

void Materializer::stop() noexcept {
  stop_ = true;
  std::lock_guard lock(mutex_);
  wake_.notify_all();
}

void Materializer::pause() noexcept { pause_requested_ = true; }

void Materializer::resume() noexcept {
  pause_requested_ = false;
  std::lock_guard lock(mutex_);
  wake_.notify_all();
}

MaterializationProgress Materializer::progress() const {
  std::lock_guard lock(mutex_);
  return progress_;
}

void Materializer::publish(const BackfillPacer* pacer) {
  std::lock_guard lock(mutex_);
  progress_.step = state_.step;
  progress_.paused = state_.paused;
  progress_.rows_done = state_.rows_done;
  progress_.rows_total = state_.rows_total;
  progress_.error = state_.error;
  if (pacer) {
    progress_.rows_per_second = pacer->rows_per_second();
    progress_.slowdown = pacer->slowdown();
  }
  const bool moving = state_.step == MaterializationStep::backfilling ||
                      state_.step == MaterializationStep::verifying;
  if (moving && progress_.rows_per_second > 0.0) {
    const double left =
        state_.rows_total > state_.rows_done ? double(state_.rows_total - state_.rows_done) : 0.0;
    progress_.eta_seconds = left / progress_.rows_per_second;
  } else {
    progress_.eta_seconds.reset();
  }
}

void Materializer::save() {
  store_.save(state_);
  publish(nullptr);
}

void Materializer::enter(MaterializationStep step) {
  state_.step = step;
  state_.watermark.clear();
  // A pass counts from zero; after the last one rows_done keeps what verify saw.
  if (step == MaterializationStep::backfilling || step == MaterializationStep::verifying)
    state_.rows_done = 0;
  save();
}

bool Materializer::wait(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, duration, [&] { return stop_.load(); });
}

bool Materializer::wait_while_paused() {
  if (pause_requested_.load() != state_.paused) {
    state_.paused = pause_requested_.load();
    save();
  }
  if (!state_.paused) return !stop_.load();
  {
    std::unique_lock lock(mutex_);
    wake_.wait(lock, [&] { return stop_.load() || !pause_requested_.load(); });
  }
  if (stop_.load()) return false;
  state_.paused = false;
  save();
  return true;
}

RunOutcome Materializer::run() {
  using Step = MaterializationStep;
  stop_ = false;
  state_ = store_.load().value_or(MaterializationState{});
  if (state_.step == Step::rolling_back || state_.step == Step::rolled_back) return roll_back();
  if (state_.step == Step::materialized) return RunOutcome::materialized;
  try {
    if (state_.step == Step::not_started) enter(Step::adding_column);
    BackfillPacer pacer(settings_.pacer);
    LatencyGuard guard(settings_.latency_history ? &settings_.latency_history->latency() : nullptr,
                       settings_.latency);
    // Taken now, from the seconds before this run: no write trigger of this run in it yet.
    const bool from_history = baseline_from_history(guard);
    bool batches_started = false;
    for (;;) {
      if (!wait_while_paused()) return RunOutcome::stopped;
      switch (state_.step) {
        case Step::adding_column:
          if (!add_column(connection_, plan_, settings_.steps, stop_).done)
            return RunOutcome::stopped;
          state_.column_added = true;
          enter(Step::installing_trigger);
          break;
        case Step::installing_trigger:
          if (!install_trigger(connection_, plan_, settings_.steps, stop_).done)
            return RunOutcome::stopped;
          log::info("materialize", "seed " + plan_.name +
                                       ": the write trigger is installed; it keeps every row "
                                       "written from now on exact");
          enter(Step::switching_to_coalesce);
          break;
        case Step::switching_to_coalesce:
          if (phase_switch_) phase_switch_(rewriter::Phase::materializing);
          if (stop_.load()) return RunOutcome::stopped;
          state_.rows_total = estimate_rows(connection_, plan_);
          enter(Step::backfilling);
          break;
        case Step::backfilling:
        case Step::verifying:
          if (!batches_started) {
            if (from_history)
              guard.start_window();
            else if (!measure_latency_baseline(guard))
              return RunOutcome::stopped;
            batches_started = true;
          }
          if (!run_batch(pacer, guard)) return RunOutcome::stopped;
          break;
        case Step::switching_to_column:
          if (phase_switch_) phase_switch_(rewriter::Phase::materialized);
          if (stop_.load()) return RunOutcome::stopped;
          state_.error.clear();
          enter(Step::materialized);
          return RunOutcome::materialized;
        default:
          return RunOutcome::failed;
      }
      if (stop_.load()) return RunOutcome::stopped;
    }
  } catch (const std::exception& error) {
    state_.error = error.what();
    save();
    return RunOutcome::failed;
  }
}

namespace {

// Tells the history a batch ran, when it ends whichever way (no history: nothing).
class NotedBatch {
 public:
  explicit NotedBatch(LatencyHistory* history) : history_(history) {}
  NotedBatch(const NotedBatch&) = delete;
  NotedBatch& operator=(const NotedBatch&) = delete;
  ~NotedBatch() {
    if (history_) history_->note_batch();
  }

 private:
  LatencyHistory* history_;
};

// Watches the batch's connection for the length of one batch (no watch: nothing seen).
class WatchedBatch {
 public:
  WatchedBatch(LockWaitWatch* watch, ControlConnection& connection) : watch_(watch) {
    if (watch_) watch_->arm(PQbackendPID(connection.native()));
  }
  WatchedBatch(const WatchedBatch&) = delete;
  WatchedBatch& operator=(const WatchedBatch&) = delete;
  ~WatchedBatch() { (void)finish(); }
  ApplicationWaits finish() {
    if (watch_) seen_ = watch_->disarm();
    watch_ = nullptr;
    return seen_;
  }

 private:
  LockWaitWatch* watch_;
  ApplicationWaits seen_;
};

}  // namespace

// The application's latency before this run (with no write trigger yet, unless it resumes one):
// the yardstick of every later window, and the one the benchmark compares with.
bool Materializer::baseline_from_history(LatencyGuard& guard) {
  if (!settings_.latency_history || settings_.latency.slow_ratio <= 0.0) return false;
  const auto window = settings_.latency_history->window(settings_.latency_window);
  if (!window || window->span < settings_.latency_baseline) return false;
  if (!guard.baseline_from(window->earlier, window->later)) return false;
  const double p99 = *guard.baseline_seconds();
  log::info("materialize", "seed " + plan_.name + ": the clients' p99 transaction takes " +
                               log::seconds_text(p99) + " over the " +
                               log::seconds_text(window->span.count()) +
                               " before the materialization ran; the batches slow down while it " +
                               "is above " + log::seconds_text(guard.slow_limit()));
  return true;
}

// Without a history: the application's latency with no batch running, measured once before the
// first batch of a run (also when it resumes a backfill after a restart).
bool Materializer::measure_latency_baseline(LatencyGuard& guard) {
  if (!settings_.latency_history || settings_.latency.slow_ratio <= 0.0) return true;
  guard.start_window();
  // No client transaction in the first tenth: nothing to protect, no reason to wait the rest.
  const auto first = settings_.latency_baseline / 10;
  if (!wait(first)) return false;
  if (guard.quiet_since_baseline_began()) return true;
  if (!wait(settings_.latency_baseline - first)) return false;
  if (guard.end_baseline()) {
    const double p99 = *guard.baseline_seconds();
    log::info("materialize", "seed " + plan_.name + ": the clients' p99 transaction takes " +
                                 log::seconds_text(p99) + " before the batches; they slow down " +
                                 "while it is above " + log::seconds_text(guard.slow_limit()));
  } else {
    log::info(
        "materialize",
        "seed " + plan_.name + ": too few client transactions in " +
            log::seconds_text(std::chrono::duration<double>(settings_.latency_baseline).count()) +
            " to pace the batches on their latency");
  }
  return true;
}

bool Materializer::run_batch(BackfillPacer& pacer, LatencyGuard& guard) {
  const auto started = Clock::now();
  std::uint64_t rows = 0;
  state_.rows_per_second = pacer.rows_per_second();  // saved with the batch
  BatchStep outcome;
  const NotedBatch noted(settings_.latency_history);
  WatchedBatch watched(watch_, connection_);
  try {
    outcome = step_batch(state_.step == MaterializationStep::verifying, pacer.batch_rows(), rows);
  } catch (const QueryError& error) {
    if (!is_busy(error)) throw;
    // The watch cancelled it after an application waited too long, or a timeout hit.
    return wait(watched.finish().cancelled ? pacer.on_cancelled() : pacer.on_busy());
  }
  const ApplicationWaits waits = watched.finish();
  if (outcome == BatchStep::ended) return true;
  if (outcome == BatchStep::held) return wait(pacer.on_busy());
  pacer.on_latency(guard.look());
  const auto pause = pacer.on_batch(rows, Clock::now() - started, waits);
  publish(&pacer);
  return wait(pause);
}

Materializer::BatchStep Materializer::step_batch(bool verifying, std::uint64_t limit,
                                                 std::uint64_t& rows) {
  using Step = MaterializationStep;
  if (verifying) return verify_step(limit, rows);
  const BatchResult batch =
      backfill_batch(connection_, plan_, state_.watermark, limit, settings_.steps);
  if (batch.finished) {
    state_.mismatches_in_pass = 0;
    state_.verify_pass = 0;
    held_without_skips_ = 0;
    enter(Step::verifying);
    return BatchStep::ended;
  }
  state_.watermark = batch.upper;
  state_.rows_done += batch.rows;
  state_.rows_updated += batch.changed;
  rows = batch.rows;
  save();
  return BatchStep::advanced;
}

// A range is done when a look after its repair finds no row that differs: from then on the write
// trigger keeps every row of it exact, so one pass is enough (docs/materialization.md).
Materializer::BatchStep Materializer::verify_step(std::uint64_t limit, std::uint64_t& rows) {
  using Step = MaterializationStep;
  const BatchResult batch =
      verify_batch(connection_, plan_, state_.watermark, limit, settings_.steps);
  if (batch.finished) {
    enter(Step::switching_to_column);
    return BatchStep::ended;
  }
  state_.rows_repaired += batch.repaired;
  if (batch.remaining > 0) {
    // Rows the repair skipped because another transaction holds them: try the range again after
    // a back-off, for as long as it takes. A repair that took every row it found and still finds
    // some, again and again, points at the expression or at writers that skip triggers.
    held_without_skips_ = batch.repaired >= batch.changed ? held_without_skips_ + 1 : 0;
    if (held_without_skips_ >= settings_.max_verify_passes)
      throw std::runtime_error(
          "seed " + plan_.name + ": " + std::to_string(batch.remaining) +
          " rows still differed from the expression after " + std::to_string(held_without_skips_) +
          " repairs of the same keys; is the expression deterministic, and do all writers fire "
          "triggers (session_replication_role)?");
    state_.mismatches_in_pass = batch.remaining;
    save();
    return BatchStep::held;
  }
  held_without_skips_ = 0;
  state_.mismatches_in_pass = 0;
  state_.watermark = batch.upper;
  state_.rows_done += batch.rows;
  rows = batch.rows;
  save();
  return BatchStep::advanced;
}

RunOutcome Materializer::roll_back() {
  stop_ = false;
  state_ = store_.load().value_or(MaterializationState{});
  if (state_.step == MaterializationStep::rolled_back) return RunOutcome::rolled_back;
  try {
    state_.step = MaterializationStep::rolling_back;
    save();
    // The resolver must stop reading the column before it disappears, on every proxy.
    if (phase_switch_) phase_switch_(rewriter::Phase::rolled_back);
    if (stop_.load()) return RunOutcome::stopped;
    if (!remove_materialization(connection_, plan_, state_.column_added, settings_.steps, stop_)
             .done)
      return RunOutcome::stopped;
    state_.column_added = false;
    state_.watermark.clear();
    state_.paused = false;
    state_.error.clear();
    state_.step = MaterializationStep::rolled_back;
    save();
    return RunOutcome::rolled_back;
  } catch (const std::exception& error) {
    state_.error = error.what();
    save();
    return RunOutcome::failed;
  }
}

}  // namespace seedproxy::seeds
