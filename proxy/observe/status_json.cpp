// Serializes the status document with nlohmann::json; seeds are matched to their thresholds and
// materializations by (database, schema, table, attribute).
#include "proxy/observe/status_json.hpp"

#include <nlohmann/json.hpp>
#include <tuple>

#include "seedproxy_version.hpp"

namespace seedproxy::proxy {
namespace {

using json = nlohmann::json;

template <class A, class B>
bool same_seed(const A& a, const B& b) {
  return std::tie(a.database, a.schema, a.table, a.attribute) ==
         std::tie(b.database, b.schema, b.table, b.attribute);
}

json threshold_json(const StatusInputs& in, const seeds::SeedStatus& seed) {
  for (const auto& t : in.thresholds) {
    if (same_seed(t, seed)) {
      return {{"policy", config::to_string(t.policy)},
              {"reads", t.reads},
              {"window_seconds", t.window_seconds}};
    }
  }
  return nullptr;
}

json progress_json(const seeds::MaterializationStatus& p) {
  json out = {{"database", p.database},
              {"schema", p.schema},
              {"table", p.table},
              {"entity", entity_label(p.schema, p.table)},
              {"attribute", p.attribute},
              {"phase", rewriter::to_string(p.phase)},
              {"step", seeds::step_text(p)},
              {"paused", p.paused},
              {"owner", p.owner},
              {"error", p.error},
              {"rows_done", p.rows_done},
              {"rows_total", p.rows_total},
              {"rows_per_second", p.rows_per_second},
              {"waiting_proxies", p.waiting_proxies},
              {"waiting_for", p.waiting_for}};
  // A paused backfill has no ETA, whatever its last rate was.
  out["eta_seconds"] = p.eta_seconds && !p.paused ? json(*p.eta_seconds) : json(nullptr);
  // rows_total is an estimate, so done may pass it; the page shows a full bar then.
  out["fraction"] = p.rows_total == 0 ? json(nullptr)
                                      : json(std::min(1.0, static_cast<double>(p.rows_done) /
                                                               static_cast<double>(p.rows_total)));
  return out;
}

}  // namespace

std::string status_json(const StatusInputs& in) {
  json seeds = json::array();
  for (const auto& seed : in.seeds) {
    seeds.push_back({{"database", seed.database},
                     {"schema", seed.schema},
                     {"table", seed.table},
                     {"entity", entity_label(seed.schema, seed.table)},
                     {"attribute", seed.attribute},
                     {"type", seed.type},
                     {"expression", seed.expression},
                     {"phase", rewriter::to_string(seed.phase)},
                     {"cross_table", seed.cross_table},
                     {"reads_in_window", seed.reads_in_window},
                     {"threshold", threshold_json(in, seed)},
                     {"declared_by", seed.declared_by},
                     {"problem", seed.problem},
                     {"inactive", seed.inactive},
                     {"dependencies", seed.dependencies},
                     {"materialize_refusal", seed.materialize_refusal},
                     {"dependency_broken", seed.dependency_broken},
                     {"dependency_error", seed.dependency_error}});
  }
  json materializations = json::array();
  for (const auto& p : in.materializations) materializations.push_back(progress_json(p));

  const auto& s = in.stats;
  json statements = json::object();
  for (std::size_t i = 0; i < statement_kind_count; ++i) {
    statements[std::string(to_string(static_cast<StatementKind>(i)))] = s.statements[i];
  }
  json document = {
      {"version", seedproxy::version_string},
      {"instance", in.instance},
      {"now", in.now_unix_seconds},
      {"uptime_seconds", in.uptime_seconds},
      {"health", {{"ok", in.health.ok}, {"reason", in.health.reason}}},
      {"clients",
       {{"current", s.clients_current()},
        {"total", s.clients_accepted},
        {"refused", s.clients_refused}}},
      {"statements", statements},
      {"seeds", std::move(seeds)},
      {"materializations", std::move(materializations)},
  };
  // Replace invalid UTF-8 (names come from the database) instead of throwing.
  return document.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace seedproxy::proxy
