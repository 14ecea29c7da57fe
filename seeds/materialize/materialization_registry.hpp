// The materialization engine's reads and writes of a database's registry: the seeds with what the
// engine decides on (policy, reads in the window, operator requests, stored progress), requests
// written by admin consoles, phase switches announced to every proxy, and the durable
// MaterializationStore of one seed (a row of seedproxy.materializations).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/materialize/materializer.hpp"

namespace seedproxy::seeds {

struct SeedName {
  std::string schema, table, attribute;
  auto operator<=>(const SeedName&) const = default;
  [[nodiscard]] std::string text() const { return schema + "." + table + "." + attribute; }
};

// A row of seedproxy.materializations.
struct StoredMaterialization {
  MaterializationState state;
  std::string owner;       // instance that wrote it last
  std::string updated_at;  // as PostgreSQL prints timestamptz
  std::optional<double> rows_per_second;
};

// What an operator asked the engine to do with a seed (seedproxy.seeds."requested").
enum class SeedRequest : std::uint8_t { none, materialize, rollback };

// The request's name as the registry stores it ("" for none, which is NULL there);
// request_from_string() reads it back, nullopt for other text.
[[nodiscard]] std::string_view to_string(SeedRequest request) noexcept;
[[nodiscard]] std::optional<SeedRequest> request_from_string(std::string_view text) noexcept;

// A seed as the engine sees it.
struct EngineSeed {
  SeedName name;
  std::string type, expression;
  rewriter::Phase phase = rewriter::Phase::virtual_;
  config::MaterializePolicy policy = config::MaterializePolicy::threshold;
  bool cross_table = false;
  std::string materialize_refusal;  // why it cannot be materialized; empty when it can (or unknown)
  std::string dependency_error;     // DDL broke what it reads, and what to do; empty when not
  std::vector<std::string> key_columns;
  std::uint64_t threshold_reads = 0, window_seconds = 0, reads_in_window = 0;
  SeedRequest requested = SeedRequest::none;
  bool paused = false;
  std::optional<StoredMaterialization> materialization;
};

// Every seed of the registry in the connected database (at version 2 or later).
[[nodiscard]] std::vector<EngineSeed> read_engine_seeds(ControlConnection& connection);

// Records an operator's request (none clears it) and announces it.
void write_request(ControlConnection& connection, const std::string& database, const SeedName& seed,
                   SeedRequest request);
// PAUSE / RESUME of a seed's materialization, announced.
void write_paused(ControlConnection& connection, const std::string& database, const SeedName& seed,
                  bool paused);
// Sets the seed's phase and announces it (always: a catalog change may come with it); reaching
// materialized or rolled_back clears the request that led there. Returns whether the phase was
// different before.
bool write_phase(ControlConnection& connection, const std::string& database, const SeedName& seed,
                 rewriter::Phase phase);
// Forgets a finished (rolled back) materialization, so the seed can be materialized afresh.
void clear_materialization(ControlConnection& connection, const SeedName& seed);

// One seed's state in seedproxy.materializations; every save is committed when it returns.
class RegistryMaterializationStore final : public MaterializationStore {
 public:
  RegistryMaterializationStore(ControlConnection& connection, SeedName seed, std::string owner);
  [[nodiscard]] std::optional<MaterializationState> load() override;
  void save(const MaterializationState& state) override;

 private:
  ControlConnection& connection_;
  SeedName seed_;
  std::string owner_;
};

}  // namespace seedproxy::seeds
