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
#include "seeds/materialize/materialization_registry.hpp"
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
  [[nodiscard]] bool begin(ControlConnection& connection, const Job& job, const std::string& name);
  void report(const Job& job, const std::string& name, RunOutcome outcome,
              const std::string& error);
  // Not before `delay` (a rollback sooner) is the job tried again.
  void retry_later(const Job& job, std::chrono::seconds delay);
  void finish_runner();
  void publish(const std::vector<EngineSeed>& seeds);
  void switch_phase(ControlConnection& connection, const SeedName& seed, Phase phase);
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
  std::optional<std::pair<std::pair<SeedName, bool>, Clock::time_point>> pending_retry_;

  // Worker thread only:
  std::unique_ptr<ControlConnection> lock_connection_;  // holds the lock; the runner's connection
  bool holding_ = false;
  std::thread runner_;
  // Failed or refused, per seed and kind (rollback or not): not tried again before then.
  std::map<std::pair<SeedName, bool>, Clock::time_point> retry_after_;
  Clock::time_point next_progress_log_{};
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

void MaterializationEngine::Worker::check(ControlConnection& watch) {
  if (runner_.joinable() && runner_done_.load()) finish_runner();
  const int version = registry_version(watch);
  if (version < 2) return;  // an older registry: a proxy that declares seeds migrates it
  if (version > registry_schema_version) {
    // A newer seedproxy owns this registry's meaning: never act on what this build misreads.
    if (!newer_registry_logged_)
      log::warning(component, "database \"" + database_ + "\": the seed registry is at version " +
                                  std::to_string(version) + ", newer than this seedproxy (" +
                                  std::to_string(registry_schema_version) +
                                  "); this proxy does not materialize there");
    newer_registry_logged_ = true;
    return;
  }
  const auto seeds = read_engine_seeds(watch);
  publish(seeds);
  if (runner_.joinable()) {
    // Follow the operator while the runner works.
    std::lock_guard lock(mutex_);
    for (const auto& seed : seeds) {
      if (!materializer_ || seed.name != running_) continue;
      if (!running_rollback_ && seed.requested == SeedRequest::rollback) materializer_->stop();
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
  // Interrupted materializations resume before new ones start.
  for (const auto& seed : seeds)
    if (!waiting(seed) &&
        (seed.phase == Phase::materializing ||
         // killed between publishing 'materialized' and recording it: finish the bookkeeping
         (seed.phase == Phase::materialized &&
          step(seed) == MaterializationStep::switching_to_column)))
      return Job{seed, false};
  // Asked for, then the hottest past its threshold.
  for (const auto& seed : seeds)
    if (!waiting(seed) && seed.phase == Phase::virtual_ &&
        seed.requested == SeedRequest::materialize)
      return Job{seed, false};
  const EngineSeed* hottest = nullptr;
  for (const auto& seed : seeds)
    if (!waiting(seed) && seed.phase == Phase::virtual_ &&
        seed.policy == config::MaterializePolicy::threshold && !seed.cross_table &&
        seed.reads_in_window >= seed.threshold_reads &&
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
  next_progress_log_ = Clock::now() + millis(engine_.settings_.progress_log_seconds);
  runner_ = std::thread([this, job = std::move(job)]() mutable {
    run(std::move(job));
    runner_done_ = true;
    wake();
  });
}

void MaterializationEngine::Worker::finish_runner() {
  runner_.join();
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
                                                 const SeedName& seed, Phase phase) {
  if (write_phase(connection, database_, seed, phase))
    log::info(component, "seed " + database_ + "." + seed.text() + " is now " +
                             std::string(rewriter::to_string(phase)));
  // This proxy's sessions follow before the engine goes on; other proxies follow the NOTIFY.
  const auto ticket = engine_.snapshots_.request_refresh(database_);
  // Woken by the publication itself; a stop is noticed between slices of 100 ms.
  for (const auto give_up = Clock::now() + std::chrono::seconds(5); Clock::now() < give_up;) {
    if (engine_.snapshots_.wait_refreshed_blocking(database_, ticket,
                                                   std::chrono::milliseconds(100)))
      return;
    if (!wait_stoppable(std::chrono::milliseconds(0))) return;
  }
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
    return MaterializationPlan::prepare(connection, target);
  } catch (const MaterializationRefused& refused) {
    const bool touched = job.seed.materialization &&
                         job.seed.materialization->state.step != MaterializationStep::not_started;
    if (job.rollback && !touched) {
      // Nothing was ever built for it: forgetting the attribute is the whole rollback.
      switch_phase(connection, job.seed.name, Phase::rolled_back);
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
                                          const std::string& name) {
  if (job.seed.phase != Phase::virtual_) {
    log::info(component, "resuming the materialization of seed " + name);
    return true;
  }
  // A fresh start: forget an earlier, finished attempt, publish the phase, and give every proxy
  // time to follow before the column appears upstream.
  if (job.seed.materialization) clear_materialization(connection, job.seed.name);
  log::info(component, "materializing seed " + name + " (" +
                           std::to_string(job.seed.reads_in_window) + " reads in the window)");
  switch_phase(connection, job.seed.name, Phase::materializing);
  return wait_stoppable(millis(engine_.settings_.phase_grace_seconds));
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
    Materializer materializer(connection, std::move(*prepared), store,
                              materializer_settings(engine_.settings_),
                              [&](Phase phase) { switch_phase(connection, job.seed.name, phase); });
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
      if (!begin(connection, job, name)) return;
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
    if (materializer_ && seed.name == running_) {
      const auto p = materializer_->progress();
      s.step = p.step;
      s.rollback_requested = false;
      s.paused = p.paused || seed.paused;
      s.rows_done = p.rows_done;
      s.rows_total = p.rows_total;
      s.rows_per_second = p.rows_per_second;
      s.eta_seconds = p.eta_seconds;
      s.owner = engine_.instance_;
      s.error = p.error;
      s.running_here = true;
    }
    out.push_back(std::move(s));
  }
  statuses_ = std::move(out);
}

namespace {

// Answers `job` with an error; false, so a step can `return fail(...)`.
bool fail(EngineJob& job, std::string_view sqlstate, std::string message, std::string hint = {}) {
  job.sqlstate = sqlstate;
  job.message = std::move(message);
  job.hint = std::move(hint);
  return false;
}

const char* verb_text(EngineJob::Verb verb) {
  switch (verb) {
    case EngineJob::Verb::materialize:
      return "MATERIALIZE";
    case EngineJob::Verb::rollback:
      return "ROLLBACK";
    case EngineJob::Verb::pause:
      return "PAUSE";
    case EngineJob::Verb::resume:
      return "RESUME";
  }
  return "RESUME";
}

// The seeds `job` names: [[database.]schema.]table.attribute, or every seed that is
// materializing for PAUSE / RESUME without one. False (and `job` failed) when it names none or
// several.
bool select_targets(EngineJob& job, const std::vector<SeedStatus>& statuses,
                    std::vector<SeedStatus>& targets) {
  if (job.target.empty()) {
    for (const auto& seed : statuses)
      if (seed.phase == Phase::materializing) targets.push_back(seed);
    return true;
  }
  const auto parts = pg::split_qualified_name(job.target);
  if (!parts || parts->size() < 2 || parts->size() > 4)
    return fail(job, sqlstate::syntax_error,
                std::string(verb_text(job.verb)) +
                    " expects table.attribute, schema.table.attribute or "
                    "database.schema.table.attribute, not \"" +
                    job.target + "\"");
  const auto& p = *parts;
  const std::size_t n = p.size();
  for (const auto& seed : statuses)
    if (seed.attribute == p[n - 1] && seed.table == p[n - 2] &&
        (n < 3 || seed.schema == p[n - 3]) && (n < 4 || seed.database == p[0]))
      targets.push_back(seed);
  if (targets.empty())
    return fail(job, sqlstate::undefined_object, "seed \"" + job.target + "\" does not exist",
                "SHOW SEEDS lists the seeds of every database this proxy watches.");
  if (targets.size() > 1) {
    std::string names;
    for (const auto& seed : targets)
      names += (names.empty() ? "" : ", ") + seed.database + "." + seed.schema + "." + seed.table +
               "." + seed.attribute;
    return fail(job, sqlstate::ambiguous_function,
                "seed name \"" + job.target + "\" is ambiguous: " + names,
                "Qualify it as database.schema.table.attribute.");
  }
  return true;
}

bool request_materialize(EngineJob& job, ControlConnection& connection, const std::string& database,
                         const EngineSeed& seed, const std::string& full) {
  if (seed.phase == Phase::materialized)
    return fail(job, sqlstate::object_not_in_prerequisite_state,
                "seed " + full + " is already materialized");
  if (seed.phase == Phase::rolled_back)
    return fail(job, sqlstate::object_not_in_prerequisite_state, "seed " + full + " is rolled back",
                "Declare it again (a changed definition in the configuration, or a DDL "
                "seed) to use it.");
  if (seed.policy == config::MaterializePolicy::never)
    return fail(job, sqlstate::object_not_in_prerequisite_state,
                "seed " + full + " has materialize.policy \"never\"",
                "Change the seed's materialize.policy to \"manual\" or \"threshold\".");
  if (seed.cross_table)
    return fail(job, sqlstate::feature_not_supported,
                "seed " + full +
                    " reads other tables (a cross-table seed) and stays "
                    "virtual: no trigger on its table could keep a column exact");
  if (seed.phase == Phase::virtual_)
    write_request(connection, database, seed.name, SeedRequest::materialize);
  job.message = "materialization of " + full + " requested";
  return true;
}

bool request_rollback(EngineJob& job, ControlConnection& connection, const std::string& database,
                      const EngineSeed& seed, const std::string& full) {
  if (seed.phase == Phase::rolled_back)
    return fail(job, sqlstate::object_not_in_prerequisite_state,
                "seed " + full + " is already rolled back");
  write_request(connection, database, seed.name, SeedRequest::rollback);
  job.message = "rollback of " + full + " requested";
  return true;
}

// PAUSE or RESUME; `done` collects the seeds paused or resumed so far.
bool request_pause(EngineJob& job, ControlConnection& connection, const std::string& database,
                   const EngineSeed& seed, const std::string& full, std::string& done) {
  if (!job.target.empty() && seed.phase != Phase::materializing &&
      seed.requested != SeedRequest::materialize)
    return fail(job, sqlstate::object_not_in_prerequisite_state,
                "seed " + full + " has no materialization in progress");
  const bool pause = job.verb == EngineJob::Verb::pause;
  write_paused(connection, database, seed.name, pause);
  done += (done.empty() ? "" : ", ") + full;
  job.message = std::string(pause ? "paused " : "resumed ") + done;
  return true;
}

}  // namespace

bool MaterializationEngine::carry_out(EngineJob& job, ControlConnection& connection,
                                      const SeedStatus& target, std::string& paused) {
  const SeedName name{target.schema, target.table, target.attribute};
  const std::string full = target.database + "." + name.text();
  std::optional<EngineSeed> seed;
  for (auto& candidate : read_engine_seeds(connection))
    if (candidate.name == name) seed = std::move(candidate);
  if (!seed)
    return fail(job, sqlstate::undefined_object, "seed " + full + " is no longer in the registry");
  switch (job.verb) {
    case EngineJob::Verb::materialize:
      return request_materialize(job, connection, target.database, *seed, full);
    case EngineJob::Verb::rollback:
      return request_rollback(job, connection, target.database, *seed, full);
    case EngineJob::Verb::pause:
    case EngineJob::Verb::resume:
      return request_pause(job, connection, target.database, *seed, full, paused);
  }
  return false;
}

void MaterializationEngine::serve(EngineJob& job) {
  std::vector<SeedStatus> targets;
  if (!select_targets(job, snapshots_.seed_statuses(), targets)) return;
  if (targets.empty()) {
    job.message = "no materialization in progress";
    return;
  }
  try {
    std::string paused;
    std::map<std::string, std::unique_ptr<ControlConnection>> connections;
    for (const auto& target : targets) {
      auto& connection = connections[target.database];
      if (!connection) connection = std::make_unique<ControlConnection>(target_, target.database);
      if (!carry_out(job, *connection, target, paused)) return;
      log::info(component, "admin " + std::string(verb_text(job.verb)) + ": " + job.message);
      std::lock_guard lock(mutex_);
      if (const auto worker = workers_.find(target.database); worker != workers_.end())
        worker->second->wake();
    }
  } catch (const std::exception& error) {
    (void)fail(job, sqlstate::system_error,
               std::string(verb_text(job.verb)) + " failed: " + error.what());
  }
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
  return out;
}

void MaterializationEngine::run() {
  for (;;) {
    std::vector<std::shared_ptr<EngineJob>> jobs;
    {
      std::unique_lock lock(mutex_);
      wake_.wait_for(lock, millis(settings_.check_seconds),
                     [&] { return stopping_ || !jobs_.empty(); });
      if (stopping_) break;
      jobs.swap(jobs_);
      for (const auto& database : snapshots_.databases_with_registry())
        if (!workers_.count(database))
          workers_.emplace(database, std::make_unique<Worker>(*this, database));
    }
    for (const auto& job : jobs) {
      serve(*job);
      job->done.complete();
    }
  }
}

}  // namespace seedproxy::seeds
