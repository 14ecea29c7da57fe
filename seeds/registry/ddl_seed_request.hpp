// DDL seeds (config ddl_seeds): a client's `ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS
// (...) STORED` turned into a seed. The request a session hands to the control thread and the
// verdict it gets back; the work itself is DdlSeedQueue's (ddl_seed_queue.hpp).
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "common/progress_signal.hpp"
#include "config/config.hpp"

namespace seedproxy::seeds {

struct DdlSeedRequest {
  // database, attribute (quoted), type, expression and materialize filled in; entity is
  // "schema"."table" when the statement named the schema, otherwise empty.
  config::SeedSpec seed;
  std::string table;  // as PostgreSQL folded it
  std::vector<std::string>
      search_path;             // the session's, "$user" expanded, for an unqualified table
  bool if_exists = false;      // ALTER TABLE IF EXISTS
  bool if_not_exists = false;  // ADD COLUMN IF NOT EXISTS
};

struct DdlSeedVerdict {
  enum class Kind {
    registered,    // the seed is in the registry and in this proxy's snapshot
    already,       // IF NOT EXISTS and the seed exists: nothing to do, answer ALTER TABLE
    pass_through,  // PostgreSQL answers it itself (IF EXISTS on a missing table, IF NOT EXISTS
                   // on a live column: both are skipped with PostgreSQL's own notice)
    refused,       // sqlstate and message say why
  };
  Kind kind = Kind::refused;
  std::string sqlstate;
  std::string message;
  int position = 0;  // 1-based character position inside the expression, 0 when none
};

// One request in flight: the control thread fills in `verdict`, then completes `done`.
struct DdlSeedJob {
  DdlSeedRequest request;
  DdlSeedVerdict verdict;
  Completion done;
};

// A schema or table name as an entity spells it: plain when PostgreSQL folds it to itself,
// double-quoted otherwise.
[[nodiscard]] std::string entity_part(const std::string& name);

}  // namespace seedproxy::seeds
