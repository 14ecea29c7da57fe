// Helpers shared by the metrics and the status page for naming and configuring seeds.
#include "proxy/observe/status_sources.hpp"

#include "common/identifiers.hpp"

namespace seedproxy::proxy {

std::vector<SeedThreshold> thresholds_from_config(const std::vector<config::SeedSpec>& seeds) {
  std::vector<SeedThreshold> result;
  result.reserve(seeds.size());
  for (const auto& spec : seeds) {
    SeedThreshold threshold;
    if (!pg::split_entity(spec.entity, threshold.schema, threshold.table)) continue;
    threshold.database = spec.database;
    threshold.attribute = spec.attribute;
    threshold.policy = spec.materialize.policy;
    threshold.reads = spec.materialize.reads;
    threshold.window_seconds = spec.materialize.window_seconds;
    result.push_back(std::move(threshold));
  }
  return result;
}

std::string entity_label(std::string_view schema, std::string_view table) {
  std::string label;
  label.reserve(schema.size() + table.size() + 1);
  label.append(schema).append(".").append(table);
  return label;
}

}  // namespace seedproxy::proxy
