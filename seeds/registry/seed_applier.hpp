// The seed applier: the configuration's seeds validated and written to every registry, or none.
//
// Every changed registry is announced; the seeds of a database that cannot be reached at start are
// kept and applied once it can be.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/registry/registry_watcher.hpp"
#include "seeds/registry/snapshot_store.hpp"

namespace seedproxy::seeds {

class SeedApplier {
 public:
  enum class Mode {
    reload,  // every database must be reachable; the instance's withdrawn declarations go
    start,   // like reload, but the seeds of an unreachable database wait for it
    retry,   // the seeds that waited, for their databases only
  };

  // `changes` is held while a registry is changed: one change at a time in this process.
  SeedApplier(ControlTarget target, std::string instance, SnapshotStore& store,
              RegistryWatcher& watcher, std::mutex& changes, config::Validation bounds = {});

  // Validates `seeds` and applies them (blocking: libpq on the calling thread). Returns every
  // refusal or conflict as a sentence; when non-empty nothing was changed anywhere (except
  // databases committed before one whose commit failed, which the sentence says). The changed
  // databases' snapshots are published before it returns.
  [[nodiscard]] std::vector<std::string> apply(const std::vector<config::SeedSpec>& seeds,
                                               Mode mode);
  // The watcher's chore: applies the seeds that wait for their database (refusals are logged).
  void retry_pending();
  // Whether seeds wait for their database.
  [[nodiscard]] bool pending() const;

 private:
  using SpecsByDatabase = std::map<std::string, std::vector<const config::SeedSpec*>>;
  struct Work;         // one database's part of an application
  struct Application;  // every database's part, the refusals and the unreachable seeds

  [[nodiscard]] SpecsByDatabase databases_of(const std::vector<config::SeedSpec>& seeds,
                                             Mode mode) const;
  void prepare(const std::string& database, const std::vector<const config::SeedSpec*>& specs,
               Application& run);
  void validate(Work& item, const std::vector<const config::SeedSpec*>& specs,
                std::vector<std::string>& refusals);
  void write(Work& item, std::vector<std::string>& refusals);
  static void roll_back(Application& run);
  static void commit(Application& run);
  void publish(const Application& run);
  void keep_unreachable(std::vector<config::SeedSpec> unreachable, Mode mode);

  ControlTarget target_;
  std::string instance_;
  SnapshotStore& store_;
  RegistryWatcher& watcher_;
  std::mutex& changes_;
  config::Validation bounds_;              // validation's limits, for every seed checked here
  mutable std::mutex pending_mutex_;       // guards pending_
  std::vector<config::SeedSpec> pending_;  // seeds of databases unreachable at start
};

}  // namespace seedproxy::seeds
