// The materialization engine's admin console commands (MATERIALIZE, ROLLBACK, PAUSE, RESUME):
// the seed a command names, the checks that refuse it, and the request written to the registry
// for whichever proxy materializes the database.
#include <map>
#include <memory>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "seeds/materialize/materialization_engine.hpp"
#include "seeds/materialize/materialization_registry.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::seeds {
namespace {

using rewriter::Phase;
constexpr const char* component = "materialize";

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
  if (!seed.dependency_error.empty())
    return fail(job, sqlstate::object_not_in_prerequisite_state,
                "seed " + full + " cannot be materialized: " + seed.dependency_error,
                "SHOW SEEDS shows the broken dependency in dependency_error.");
  if (!seed.materialize_refusal.empty())
    return fail(job, sqlstate::feature_not_supported,
                "seed " + full + " stays virtual: " + seed.materialize_refusal,
                "docs/materialization.md says which cross-table expressions can be materialized.");
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
      wake_worker(target.database);
    }
  } catch (const std::exception& error) {
    (void)fail(job, sqlstate::system_error,
               std::string(verb_text(job.verb)) + " failed: " + error.what());
  }
}

}  // namespace seedproxy::seeds
