// The DDL-seed queue: a client's ALTER TABLE ... GENERATED ALWAYS AS (...) STORED made a seed.
//
// A session hands the statement to the registry watcher's thread as a job; the thread resolves the
// table through the session's search_path, validates the seed, registers it, publishes the
// snapshot and answers the job.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/registry/ddl_seed_request.hpp"
#include "seeds/registry/registry_watcher.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

struct ValidatedSeed;

class DdlSeedQueue {
 public:
  // `changes` is held while a registry is changed: one change at a time in this process.
  DdlSeedQueue(ControlTarget target, std::string instance, SnapshotStore& store,
               RegistryWatcher& watcher, std::mutex& changes, config::Validation bounds = {});

  // Queues `job` and wakes the watcher, which answers it (sets job->done). Never blocks; a job
  // submitted while stopping is never answered.
  void submit(std::shared_ptr<DdlSeedJob> job);
  // The watcher's chore: answers every queued job.
  void serve();
  // Validates one DDL seed and registers it, published in this proxy's snapshot before returning
  // (blocking: libpq on the calling thread; never call it on an I/O thread).
  [[nodiscard]] DdlSeedVerdict register_now(const DdlSeedRequest& request);

 private:
  // Fills in spec.entity as PostgreSQL would resolve the table; a verdict when the statement is
  // answered without a seed (IF EXISTS on a missing table, or no such table).
  [[nodiscard]] static std::optional<DdlSeedVerdict> resolve_table(ControlConnection& connection,
                                                                   const DdlSeedRequest& request,
                                                                   config::SeedSpec& spec);
  // Inserts the validated seed into the registry, unless a seed of that name is there already.
  [[nodiscard]] DdlSeedVerdict insert(ControlConnection& connection, const config::SeedSpec& spec,
                                      const ValidatedSeed& validated, bool if_not_exists,
                                      const std::string& label);

  ControlTarget target_;
  std::string instance_;
  SnapshotStore& store_;
  RegistryWatcher& watcher_;
  std::mutex& changes_;
  config::Validation bounds_;  // validation's limits, for every seed checked here
  std::mutex jobs_mutex_;      // guards jobs_
  std::vector<std::shared_ptr<DdlSeedJob>> jobs_;
};

}  // namespace seedproxy::seeds
