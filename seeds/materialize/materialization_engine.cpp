// The engine thread (admin jobs, one worker per database) and the workers (election, decision,
// running one Materializer at a time, following requests, progress logs).
#include "seeds/materialize/materialization_engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "seeds/materialize/acknowledgements.hpp"
#include "seeds/materialize/dependency_check.hpp"
#include "seeds/materialize/materialization_registry.hpp"
#include "seeds/registry/fleet.hpp"
#include "seeds/registry/registry_schema.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::seeds {
namespace {

using Clock = std::chrono::steady_clock;
using rewriter::Phase;
constexpr const char* component = "materialize";

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

MaterializerSettings materializer_settings(const config::Materialization& m) {
  MaterializerSettings out;
  out.steps.lock_timeout = millis(m.lock_timeout_seconds);
  out.pacer.initial_batch_rows = m.initial_batch_rows;
  out.pacer.min_batch_rows = m.min_batch_rows;
  out.pacer.max_batch_rows = m.max_batch_rows;
  out.pacer.target_batch = millis(m.target_batch_seconds);
  out.pacer.pause_ratio = m.pause_ratio;
  out.latency.slow_ratio = m.latency_ratio;
  // Speed up again once the p99 is back within half the allowed rise.
  out.latency.relax_ratio = 1.0 + (m.latency_ratio - 1.0) / 2.0;
  out.latency.allowance = m.latency_allowance_seconds;
  return out;
}

std::string progress_line(const std::string& name, const MaterializationProgress& p) {
  char text[256];
  std::string line = "seed " + name + ": " + std::string(to_string(p.step));
  if (p.step == MaterializationStep::backfilling || p.step == MaterializationStep::verifying) {
    const double percent =
        p.rows_total ? 100.0 * double(std::min(p.rows_done, p.rows_total)) / double(p.rows_total)
                     : 0.0;
    std::snprintf(text, sizeof text, " %llu of about %llu rows (%.1f%%), %.0f rows/s",
                  static_cast<unsigned long long>(p.rows_done),
                  static_cast<unsigned long long>(p.rows_total), percent, p.rows_per_second);
    line += text;
    if (p.eta_seconds) line += ", about " + log::seconds_text(*p.eta_seconds) + " left";
    if (p.slowdown > 1.0) {
      std::snprintf(text, sizeof text, ", pauses x%.0f while the clients' latency is up",
                    p.slowdown);
      line += text;
    }
  }
  if (p.paused) line += " (paused)";
  return line;
}

}  // namespace

// One database: reads its registry every check, holds the materializer lock when it can, and
// runs at most one Materializer (on `runner_`) at a time.
class MaterializationEngine::Worker {
 public:
  Worker(MaterializationEngine& engine, std::string database)
      : engine_(engine), database_(std::move(database)), thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      if (materializer_) materializer_->stop();
    }
    wake_.notify_all();
    thread_.join();
  }
  void wake() {
    std::lock_guard lock(mutex_);
    woken_ = true;
    wake_.notify_all();
  }
  std::vector<MaterializationStatus> statuses() const {
    std::lock_guard lock(mutex_);
    return statuses_;
  }
  // Whether a materialization or rollback runs now (the worker must not be let go quietly).
  [[nodiscard]] bool busy() const noexcept { return busy_.load(); }

 private:
  struct Job {
    EngineSeed seed;
    bool rollback = false;
  };

  void loop();
  void check(ControlConnection& watch);
  [[nodiscard]] std::optional<Job> choose(const std::vector<EngineSeed>& seeds);
  bool hold_lock();
  void start(Job job);
  void run(Job job);  // runner thread
  // Runner thread: the plan for the job's seed, or nullopt when it cannot be (or need not be)
  // materialized, which this has dealt with.
  [[nodiscard]] std::optional<MaterializationPlan> plan(ControlConnection& connection,
                                                        const Job& job,
                                                        MaterializationStore& store);
  // Runner thread: announces a fresh materialization (or logs a resumed one); false when stopped.
  [[nodiscard]] bool begin(ControlConnection& connection, const Job& job, const std::string& name,
                           const Materializer& materializer);
  void report(const Job& job, const std::string& name, RunOutcome outcome,
              const std::string& error);
  // Not before `delay` (a rollback sooner) is the job tried again.
  void retry_later(const Job& job, std::chrono::seconds delay);
  void finish_runner();
  void publish(const std::vector<EngineSeed>& seeds);
  // Writes the phase and waits until every live proxy serves it (or `materializer`, when given,
  // is stopped, or the worker is).
  void switch_phase(ControlConnection& connection, const SeedName& seed, Phase phase,
                    const Materializer* materializer);
  // The acknowledgement wait's state, for statuses and the log.
  void waiting(const SeedName& seed, const AcknowledgementWait& wait);
  // What an older registry needs before this worker acts on it; false when it must not act.
  bool registry_ready(ControlConnection& watch);
  bool wait_stoppable(std::chrono::milliseconds duration);

  MaterializationEngine& engine_;
  std::string database_;

  mutable std::mutex mutex_;  // guards everything below that the runner or readers touch
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  std::vector<MaterializationStatus> statuses_;
  Materializer* materializer_ = nullptr;  // the runner's, while it runs
  SeedName running_;
  bool running_rollback_ = false;
  std::atomic<bool> runner_done_{false};
  std::atomic<bool> busy_{false};
  std::optional<std::pair<std::pair<SeedName, bool>, Clock::time_point>> pending_retry_;
  AcknowledgementWait acknowledgement_;  // the runner's wait, for the seed it runs
  AcknowledgementWait fleet_wait_;       // proxies behind the registry, seen at the last check

  // Worker thread only:
  std::unique_ptr<ControlConnection> lock_connection_;  // holds the lock; the runner's connection
  bool holding_ = false;
  std::thread runner_;
  // Failed or refused, per seed and kind (rollback or not): not tried again before then.
  std::map<std::pair<SeedName, bool>, Clock::time_point> retry_after_;
  Clock::time_point next_progress_log_{};
  Clock::time_point next_dependency_check_{};
  std::string lock_problem_;
  bool newer_registry_logged_ = false;

  std::thread thread_;  // last: starts after every member above exists
};

void MaterializationEngine::Worker::loop() {
  std::unique_ptr<ControlConnection> watch;
  std::string problem;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) break;
    }
    try {
      if (!watch) watch = std::make_unique<ControlConnection>(engine_.target_, database_);
      check(*watch);
      problem.clear();
    } catch (const std::exception& error) {
      if (problem != error.what()) {
        problem = error.what();
        log::warning(component, "database \"" + database_ + "\": " + problem);
      }
      watch.reset();
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, millis(engine_.settings_.check_seconds),
                   [&] { return stopping_ || woken_; });
    woken_ = false;
    if (stopping_) break;
  }
  if (runner_.joinable()) runner_.join();
}

bool MaterializationEngine::Worker::registry_ready(ControlConnection& watch) {
  const int version = registry_version(watch);
  if (version < 2) return false;  // an older registry: a proxy that declares seeds migrates it
  if (version > registry_schema_version) {
    // A newer seedproxy owns this registry's meaning: never act on what this build misreads.
    if (!newer_registry_logged_)
      log::warning(component, "database \"" + database_ + "\": the seed registry is at version " +
                                  std::to_string(version) + ", newer than this seedproxy (" +
                                  std::to_string(registry_schema_version) +
                                  "); this proxy does not materialize there");
    newer_registry_logged_ = true;
    return false;
  }
  if (version < fleet_schema_version) {
    // Phase changes need the heartbeat table to be acknowledged: migrate before acting.
    upgrade_registry(watch);
    log::info(component, "database \"" + database_ + "\": seed registry migrated to version " +
                             std::to_string(registry_schema_version));
  }
  return true;
}

void MaterializationEngine::Worker::check(ControlConnection& watch) {
  if (runner_.joinable() && runner_done_.load()) finish_runner();
  if (!registry_ready(watch)) return;
  auto seeds = read_engine_seeds(watch);
  if (Clock::now() >= next_dependency_check_ && registry_version(watch) >= 5) {
    // DDL straight on the database is noticed here too, within a few seconds.
    next_dependency_check_ = Clock::now() + std::chrono::seconds(2);
    record_broken_dependencies(watch, database_, seeds);
  }
  // Proxies behind the registry, shown while something is in flight.
  AcknowledgementWait behind;
  if (std::any_of(seeds.begin(), seeds.end(), [](const EngineSeed& seed) {
        return seed.phase == Phase::materializing || seed.requested != SeedRequest::none;
      }))
    behind = laggards(read_fleet(watch), read_registry_change(watch));
  {
    std::lock_guard lock(mutex_);
    fleet_wait_ = std::move(behind);
  }
  publish(seeds);
  if (runner_.joinable()) {
    // Follow the operator while the runner works.
    std::lock_guard lock(mutex_);
    for (const auto& seed : seeds) {
      if (!materializer_ || seed.name != running_) continue;
      // A broken dependency stops a materialization: its steps would fail on the missing column.
      if (!running_rollback_ &&
          (seed.requested == SeedRequest::rollback || !seed.dependency_error.empty()))
        materializer_->stop();
      if (seed.paused)
        materializer_->pause();
      else
        materializer_->resume();
    }
    if (materializer_ && Clock::now() >= next_progress_log_) {
      next_progress_log_ = Clock::now() + millis(engine_.settings_.progress_log_seconds);
      log::info(component,
                progress_line(database_ + "." + running_.text(), materializer_->progress()));
    }
    return;
  }
  if (!engine_.settings_.enabled) return;
  auto job = choose(seeds);
  if (!job || !hold_lock()) return;
  start(std::move(*job));
}

std::optional<MaterializationEngine::Worker::Job> MaterializationEngine::Worker::choose(
    const std::vector<EngineSeed>& seeds) {
  const auto now = Clock::now();
  const auto waiting = [&](const EngineSeed& seed, bool rollback = false) {
    const auto found = retry_after_.find({seed.name, rollback});
    return found != retry_after_.end() && now < found->second;
  };
  const auto step = [](const EngineSeed& seed) {
    return seed.materialization ? seed.materialization->state.step
                                : MaterializationStep::not_started;
  };
  // Rollbacks first: asked for, or interrupted.
  for (const auto& seed : seeds)
    if (!waiting(seed, true) &&
        ((seed.requested == SeedRequest::rollback && seed.phase != Phase::rolled_back) ||
         step(seed) == MaterializationStep::rolling_back))
      return Job{seed, true};
  // Interrupted materializations resume before new ones start; nothing starts or resumes while
  // DDL has broken what the seed reads.
  for (const auto& seed : seeds)
    if (!waiting(seed) && seed.dependency_error.empty() &&
        (seed.phase == Phase::materializing ||
         // killed between publishing 'materialized' and recording it: finish the bookkeeping
         (seed.phase == Phase::materialized &&
          step(seed) == MaterializationStep::switching_to_column)))
      return Job{seed, false};
  // Asked for, then the hottest past its threshold.
  for (const auto& seed : seeds)
    if (!waiting(seed) && seed.phase == Phase::virtual_ && seed.dependency_error.empty() &&
        seed.requested == SeedRequest::materialize)
      return Job{seed, false};
  const EngineSeed* hottest = nullptr;
  for (const auto& seed : seeds)
    if (!waiting(seed) && seed.phase == Phase::virtual_ &&
        seed.policy == config::MaterializePolicy::threshold && seed.materialize_refusal.empty() &&
        seed.dependency_error.empty() && seed.reads_in_window >= seed.threshold_reads &&
        !(seed.materialization && !seed.materialization->state.error.empty() &&
          step(seed) == MaterializationStep::not_started) &&
        (!hottest || seed.reads_in_window > hottest->reads_in_window))
      hottest = &seed;
  if (hottest) return Job{*hottest, false};
  return std::nullopt;
}

bool MaterializationEngine::Worker::hold_lock() {
  try {
    if (!lock_connection_) {
      lock_connection_ = std::make_unique<ControlConnection>(engine_.target_, database_);
      holding_ = false;
    }
    // Taken again and released at once when held: proves the connection (and so the lock) lives.
    auto taken = lock_connection_->query("electing the database's materializer",
                                         "SELECT pg_try_advisory_lock($1::bigint)",
                                         {std::to_string(materializer_lock_key)});
    const bool got = std::string(PQgetvalue(taken.get(), 0, 0)) == "t";
    if (got && holding_)
      (void)lock_connection_->query("keeping one hold of the materializer lock",
                                    "SELECT pg_advisory_unlock($1::bigint)",
                                    {std::to_string(materializer_lock_key)});
    if (got && !holding_)
      log::info(component, "this proxy (" + engine_.instance_ +
                               ") is the materializer of database \"" + database_ + "\"");
    holding_ = got;
    lock_problem_.clear();
    return got;
  } catch (const std::exception& error) {
    if (lock_problem_ != error.what()) {
      lock_problem_ = error.what();
      log::warning(component, "database \"" + database_ + "\": " + lock_problem_);
    }
    lock_connection_.reset();
    holding_ = false;
    return false;
  }
}

void MaterializationEngine::Worker::start(Job job) {
  {
    std::lock_guard lock(mutex_);
    running_ = job.seed.name;
    running_rollback_ = job.rollback;
  }
  runner_done_ = false;
  busy_ = true;
  next_progress_log_ = Clock::now() + millis(engine_.settings_.progress_log_seconds);
  runner_ = std::thread([this, job = std::move(job)]() mutable {
    run(std::move(job));
    runner_done_ = true;
    wake();
  });
}

void MaterializationEngine::Worker::finish_runner() {
  runner_.join();
  busy_ = false;
  std::lock_guard lock(mutex_);
  materializer_ = nullptr;
  if (pending_retry_) retry_after_[pending_retry_->first] = pending_retry_->second;
  pending_retry_.reset();
}

bool MaterializationEngine::Worker::wait_stoppable(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, duration, [&] { return stopping_; });
}

void MaterializationEngine::Worker::switch_phase(ControlConnection& connection,
                                                 const SeedName& seed, Phase phase,
                                                 const Materializer* materializer) {
  if (write_phase(connection, database_, seed, phase))
    log::info(component, "seed " + database_ + "." + seed.text() + " is now " +
                             std::string(rewriter::to_string(phase)));
  // Every proxy (this one too) follows the NOTIFY and acknowledges the version that holds the
  // change; the schema changes only after that (docs/materialization.md).
  const auto version = read_registry_change(connection);
  const auto stopped = [&] {
    std::lock_guard lock(mutex_);
    return stopping_ || (materializer && materializer->stopping());
  };
  if (wait_for_acknowledgements(connection, version, stopped,
                                [&](const AcknowledgementWait& wait) { waiting(seed, wait); }) &&
      phase != Phase::materialized)
    log::info(component, "seed " + database_ + "." + seed.text() + ": every live proxy serves " +
                             std::string(rewriter::to_string(phase)));
}

void MaterializationEngine::Worker::waiting(const SeedName& seed, const AcknowledgementWait& wait) {
  bool news = false;
  {
    std::lock_guard lock(mutex_);
    news = wait.waiting != acknowledgement_.waiting;
    acknowledgement_ = wait;
  }
  // Once per change of how many it waits for, not every second of it.
  if (news && wait.waiting > 0)
    log::info(component, "seed " + database_ + "." + seed.text() + ": " + wait.text);
}

void MaterializationEngine::Worker::retry_later(const Job& job, std::chrono::seconds delay) {
  // retry_after_ is the worker thread's; the runner hands its verdict over through the lock.
  std::lock_guard lock(mutex_);
  // A rollback is retried sooner: it is what an operator reaches for when things go wrong.
  pending_retry_ = {{job.seed.name, job.rollback},
                    Clock::now() + (job.rollback ? delay / 6 : delay)};
}

std::optional<MaterializationPlan> MaterializationEngine::Worker::plan(
    ControlConnection& connection, const Job& job, MaterializationStore& store) {
  const MaterializationTarget target{
      job.seed.name.schema, job.seed.name.table,  job.seed.name.attribute, job.seed.type,
      job.seed.expression,  job.seed.key_columns, job.seed.cross_table};
  try {
    auto prepared = MaterializationPlan::prepare(connection, target, job.rollback);
    if (!job.rollback && !prepared.dependency_refusal.empty())
      throw MaterializationRefused("seed " + prepared.name +
                                   " cannot be materialized: " + prepared.dependency_refusal);
    return prepared;
  } catch (const MaterializationRefused& refused) {
    const bool touched = job.seed.materialization &&
                         job.seed.materialization->state.step != MaterializationStep::not_started;
    if (job.rollback && !touched) {
      // Nothing was ever built for it: forgetting the attribute is the whole rollback.
      switch_phase(connection, job.seed.name, Phase::rolled_back, nullptr);
      return std::nullopt;
    }
    MaterializationState state =
        job.seed.materialization ? job.seed.materialization->state : MaterializationState{};
    state.error = refused.what();
    store.save(state);
    if (!job.rollback && job.seed.phase == Phase::virtual_)
      write_request(connection, database_, job.seed.name, SeedRequest::none);
    log::warning(component, refused.what());
    retry_later(job, std::chrono::seconds(3600));
    return std::nullopt;
  }
}

bool MaterializationEngine::Worker::begin(ControlConnection& connection, const Job& job,
                                          const std::string& name,
                                          const Materializer& materializer) {
  if (job.seed.phase != Phase::virtual_) {
    log::info(component, "resuming the materialization of seed " + name);
    return true;
  }
  // A fresh start: forget an earlier, finished attempt, publish the phase, and wait until every
  // live proxy serves it before the column appears upstream.
  if (job.seed.materialization) clear_materialization(connection, job.seed.name);
  log::info(component, "materializing seed " + name + " (" +
                           std::to_string(job.seed.reads_in_window) + " reads in the window)");
  switch_phase(connection, job.seed.name, Phase::materializing, &materializer);
  return !materializer.stopping() && wait_stoppable(std::chrono::milliseconds(0));
}

void MaterializationEngine::Worker::report(const Job& job, const std::string& name,
                                           RunOutcome outcome, const std::string& error) {
  switch (outcome) {
    case RunOutcome::materialized:
      log::info(component, "seed " + name + " is materialized");
      break;
    case RunOutcome::rolled_back:
      log::info(component, "seed " + name + " is rolled back");
      break;
    case RunOutcome::stopped:
      break;
    case RunOutcome::failed:
      log::error(component, "seed " + name + ": " + error + " (retrying in 60 s)");
      retry_later(job, std::chrono::seconds(60));
      break;
  }
}

void MaterializationEngine::Worker::run(Job job) {
  const std::string name = database_ + "." + job.seed.name.text();
  ControlConnection& connection = *lock_connection_;
  try {
    RegistryMaterializationStore store(connection, job.seed.name, engine_.instance_);
    auto prepared = plan(connection, job, store);
    if (!prepared) return;
    const Materializer* self = nullptr;  // for the phase switch to see a stop while it waits
    MaterializerSettings settings = materializer_settings(engine_.settings_);
    settings.latency_history = engine_.latency_;
    // Its own connection, opened at the first batch: it looks at pg_locks while batches run.
    LockWaitWatch watch(
        [this] {
          return std::make_unique<ControlConnection>(engine_.target_, database_,
                                                     "seedproxy lock watch");
        },
        settings.steps.lock_timeout);
    Materializer materializer(
        connection, std::move(*prepared), store, settings,
        [&](Phase phase) { switch_phase(connection, job.seed.name, phase, self); }, &watch);
    self = &materializer;
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;
      materializer_ = &materializer;
    }
    const auto forget = [&] {
      std::lock_guard lock(mutex_);
      materializer_ = nullptr;
    };
    // Also on an exception: readers must lose the pointer before the Materializer is destroyed
    // (this guard is destroyed first, being declared after it).
    struct ForgetOnExit {
      decltype(forget)& clear;
      ~ForgetOnExit() { clear(); }
    } forget_on_exit{forget};
    RunOutcome outcome;
    if (job.rollback) {
      log::info(component, "rolling back seed " + name);
      outcome = materializer.roll_back();
    } else {
      if (!begin(connection, job, name, materializer)) return;
      if (job.seed.paused) materializer.pause();
      outcome = materializer.run();
    }
    const auto progress = materializer.progress();
    forget();
    report(job, name, outcome, progress.error);
  } catch (const std::exception& error) {
    log::error(component, "seed " + name + ": " + error.what() + " (retrying in 10 s)");
    retry_later(job, std::chrono::seconds(10));
    std::lock_guard lock(mutex_);
    materializer_ = nullptr;
  }
}

void MaterializationEngine::Worker::publish(const std::vector<EngineSeed>& seeds) {
  std::vector<MaterializationStatus> out;
  std::lock_guard lock(mutex_);
  for (const auto& seed : seeds) {
    if (!seed.materialization && seed.requested == SeedRequest::none &&
        seed.phase != Phase::materializing)
      continue;
    MaterializationStatus s;
    s.database = database_;
    s.schema = seed.name.schema;
    s.table = seed.name.table;
    s.attribute = seed.name.attribute;
    s.phase = seed.phase;
    s.paused = seed.paused;
    if (seed.materialization) {
      const auto& m = *seed.materialization;
      s.step = m.state.step;
      s.rows_done = m.state.rows_done;
      s.rows_total = m.state.rows_total;
      s.rows_per_second = m.rows_per_second.value_or(0.0);
      s.owner = m.owner;
      s.error = m.state.error;
      s.updated_at = m.updated_at;
    }
    s.rollback_requested = seed.requested == SeedRequest::rollback &&
                           seed.phase != Phase::rolled_back && seed.phase != Phase::materialized;
    if (seed.phase == Phase::materializing || seed.requested != SeedRequest::none) {
      s.waiting_proxies = fleet_wait_.waiting;
      s.waiting_for = fleet_wait_.text;
    }
    if (materializer_ && seed.name == running_) {
      const auto p = materializer_->progress();
      s.step = p.step;
      s.rollback_requested = false;
      s.paused = p.paused || seed.paused;
      s.rows_done = p.rows_done;
      s.rows_total = p.rows_total;
      s.rows_per_second = p.rows_per_second;
      s.slowdown = p.slowdown;
      s.eta_seconds = p.eta_seconds;
      s.owner = engine_.instance_;
      s.error = p.error;
      s.running_here = true;
      s.waiting_proxies = acknowledgement_.waiting;
      s.waiting_for = acknowledgement_.text;
    }
    out.push_back(std::move(s));
  }
  statuses_ = std::move(out);
}

MaterializationEngine::MaterializationEngine(ControlTarget target, std::string instance,
                                             SnapshotRegistry& snapshots,
                                             config::Materialization settings)
    : target_(std::move(target)),
      instance_(std::move(instance)),
      snapshots_(snapshots),
      settings_(settings) {}

MaterializationEngine::~MaterializationEngine() { stop(); }

void MaterializationEngine::start() {
  thread_ = std::thread([this] { run(); });
}

void MaterializationEngine::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::map<std::string, std::unique_ptr<Worker>> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  workers.clear();  // each stops its backfill and joins
}

void MaterializationEngine::submit(std::shared_ptr<EngineJob> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_all();
}

std::vector<MaterializationStatus> MaterializationEngine::statuses() const {
  std::vector<MaterializationStatus> out;
  std::lock_guard lock(mutex_);
  for (const auto& [name, worker] : workers_) {
    auto part = worker->statuses();
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  for (const auto& [name, part] : retired_) out.insert(out.end(), part.begin(), part.end());
  return out;
}

void MaterializationEngine::release(std::string database, std::shared_ptr<Completion> done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      releases_.push_back({std::move(database), std::move(done)});
      done = nullptr;
    }
  }
  if (done) done->complete();  // stopping: every worker goes anyway
  wake_.notify_all();
}

void MaterializationEngine::wake_worker(const std::string& database) {
  std::lock_guard lock(mutex_);
  if (const auto worker = workers_.find(database); worker != workers_.end()) worker->second->wake();
}

void MaterializationEngine::manage_workers() {
  const auto live = snapshots_.databases_with_live_seeds();
  std::vector<std::unique_ptr<Worker>> gone;
  std::vector<Release> releases;
  {
    std::lock_guard lock(mutex_);
    releases.swap(releases_);
    for (const auto& database : live)
      if (!workers_.count(database)) {
        workers_.emplace(database, std::make_unique<Worker>(*this, database));
        retired_.erase(database);
      }
    for (auto it = workers_.begin(); it != workers_.end();) {
      const bool released = std::any_of(releases.begin(), releases.end(),
                                        [&](const Release& r) { return r.database == it->first; });
      const bool needed = std::find(live.begin(), live.end(), it->first) != live.end();
      if (!released && (needed || it->second->busy())) {
        ++it;
        continue;
      }
      retired_[it->first] = it->second->statuses();
      gone.push_back(std::move(it->second));
      it = workers_.erase(it);
    }
  }
  gone.clear();  // each stops its backfill, closes its connections and joins, outside the lock
  for (const auto& release : releases) release.done->complete();
}

void MaterializationEngine::run() {
  for (;;) {
    std::vector<std::shared_ptr<EngineJob>> jobs;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, millis(settings_.check_seconds),
                     [&] { return stopping_ || !jobs_.empty() || !releases_.empty(); });
      if (stopping_) break;
      jobs.swap(jobs_);
    }
    manage_workers();
    for (const auto& job : jobs) {
      serve(*job);
      job->done.complete();
    }
  }
  std::lock_guard lock(mutex_);
  for (const auto& release : releases_) release.done->complete();
  releases_.clear();
}

}  // namespace seedproxy::seeds
