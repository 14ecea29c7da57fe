// Metric families with the seedproxy_ prefix, built from snapshots at scrape time.
#include "proxy/observe/metrics.hpp"

#include <prometheus/text_serializer.h>

#include <array>
#include <exception>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

#include "common/log.hpp"
#include "proxy/observe/process_stats.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seedproxy_version.hpp"

namespace seedproxy::proxy {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using Labels = std::vector<ClientMetric::Label>;

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily result;
  result.name = std::move(name);
  result.help = std::move(help);
  result.type = type;
  return result;
}

void add_counter(MetricFamily& f, double value, Labels labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.counter.value = value;
  f.metric.push_back(std::move(metric));
}

void add_gauge(MetricFamily& f, double value, Labels labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.gauge.value = value;
  f.metric.push_back(std::move(metric));
}

void add_histogram(MetricFamily& f, const AtomicHistogram::Snapshot& snapshot, Labels labels = {}) {
  ClientMetric metric;
  metric.label = std::move(labels);
  metric.histogram.sample_count = snapshot.count();
  metric.histogram.sample_sum = snapshot.sum_seconds;
  for (std::size_t i = 0; i < snapshot.upper_bounds.size(); ++i) {
    metric.histogram.bucket.push_back({snapshot.cumulative[i], snapshot.upper_bounds[i]});
  }
  metric.histogram.bucket.push_back({snapshot.count(), std::numeric_limits<double>::infinity()});
  f.metric.push_back(std::move(metric));
}

Labels seed_labels(std::string_view database, std::string entity, std::string_view attribute) {
  return {{"attribute", std::string(attribute)},
          {"database", std::string(database)},
          {"entity", std::move(entity)}};
}

// Calls a source; a throwing source costs its families, not the scrape.
template <class T>
std::vector<T> call(const std::function<std::vector<T>()>& source, std::string_view what) {
  if (!source) return {};
  try {
    return source();
  } catch (const std::exception& e) {
    log::warning("metrics", std::string("could not read ") + std::string(what) + ": " + e.what());
  } catch (...) {
    log::warning("metrics", std::string("could not read ") + std::string(what));
  }
  return {};
}

void add_tls_family(std::vector<MetricFamily>& out, const ProxyStats::Snapshot& s) {
  auto tls = family("seedproxy_tls_handshakes_total",
                    "TLS handshakes by leg (client: clients with the proxy; server: the proxy "
                    "with PostgreSQL) and result: ok, or why it failed.",
                    MetricType::Counter);
  for (std::size_t i = 0; i < peer_count; ++i)
    for (std::size_t j = 0; j < tls_outcome_count; ++j)
      add_counter(tls, static_cast<double>(s.tls_handshakes[i][j]),
                  {{"leg", std::string(to_string(static_cast<Peer>(i)))},
                   {"result", std::string(to_string(static_cast<TlsOutcome>(j)))}});
  out.push_back(std::move(tls));
}

void add_server_pool_families(std::vector<MetricFamily>& out, const ProxyStats::Snapshot& s) {
  auto parked =
      family("seedproxy_server_pool_parked",
             "Backends parked right now for the next client (server_pool).", MetricType::Gauge);
  add_gauge(parked, static_cast<double>(s.servers_parked_now()));
  out.push_back(std::move(parked));
  auto kept = family("seedproxy_server_pool_parked_total",
                     "Backends reset and parked when their client left (server_pool).",
                     MetricType::Counter);
  add_counter(kept, static_cast<double>(s.servers_parked));
  out.push_back(std::move(kept));
  auto reused = family("seedproxy_server_pool_reused_total",
                       "Parked backends handed to a new client, who skipped PostgreSQL's backend "
                       "start (server_pool).",
                       MetricType::Counter);
  add_counter(reused, static_cast<double>(s.servers_reused));
  out.push_back(std::move(reused));
}

void add_proxy_families(const ProxyStats::Snapshot& s, std::vector<MetricFamily>& out) {
  auto build = family("seedproxy_build_info", "Version of the running seedproxy binary (always 1).",
                      MetricType::Gauge);
  add_gauge(build, 1, {{"version", seedproxy::version_string}});
  out.push_back(std::move(build));

  auto current = family("seedproxy_client_connections", "Client connections open right now.",
                        MetricType::Gauge);
  add_gauge(current, static_cast<double>(s.clients_current()));
  out.push_back(std::move(current));

  auto accepted = family("seedproxy_client_connections_total",
                         "Client connections accepted since start.", MetricType::Counter);
  add_counter(accepted, static_cast<double>(s.clients_accepted));
  out.push_back(std::move(accepted));

  auto refused =
      family("seedproxy_client_connections_refused_total",
             "Client connections refused (e.g. limits.max_clients reached).", MetricType::Counter);
  add_counter(refused, static_cast<double>(s.clients_refused));
  out.push_back(std::move(refused));

  auto connect =
      family("seedproxy_upstream_connect_seconds",
             "Time to open a session's TCP connection to PostgreSQL.", MetricType::Histogram);
  add_histogram(connect, s.upstream_connect);
  out.push_back(std::move(connect));

  auto upstream_errors = family("seedproxy_upstream_errors_total",
                                "Upstream failures: connect (could not reach PostgreSQL), "
                                "relay (the connection broke during a session) or standby (a "
                                "read-write session's backend did not take writes).",
                                MetricType::Counter);
  for (std::size_t i = 0; i < upstream_stage_count; ++i) {
    add_counter(upstream_errors, static_cast<double>(s.upstream_errors[i]),
                {{"stage", std::string(to_string(static_cast<UpstreamStage>(i)))}});
  }
  out.push_back(std::move(upstream_errors));

  auto statements = family("seedproxy_statements_total",
                           "Round trips started by clients, by protocol message: simple_query "
                           "(Query), extended_sync (Sync), function_call (FunctionCall).",
                           MetricType::Counter);
  auto durations = family("seedproxy_statement_duration_seconds",
                          "Latency through the proxy from the client's Query, Sync or "
                          "FunctionCall to PostgreSQL's ReadyForQuery.",
                          MetricType::Histogram);
  for (std::size_t i = 0; i < statement_kind_count; ++i) {
    const std::string kind(to_string(static_cast<StatementKind>(i)));
    add_counter(statements, static_cast<double>(s.statements[i]), {{"kind", kind}});
    add_histogram(durations, s.statement_duration[i], {{"kind", kind}});
  }
  out.push_back(std::move(statements));
  out.push_back(std::move(durations));

  auto rewrite =
      family("seedproxy_rewrite_duration_seconds",
             "Time the rewriter spent on a statement, cache hits included.", MetricType::Histogram);
  add_histogram(rewrite, s.rewrite_duration);
  out.push_back(std::move(rewrite));

  auto hits = family("seedproxy_rewrite_cache_hits_total",
                     "Statements whose rewrite came from the rewrite cache.", MetricType::Counter);
  add_counter(hits, static_cast<double>(s.rewrite_cache_hits));
  out.push_back(std::move(hits));
  auto misses = family("seedproxy_rewrite_cache_misses_total",
                       "Statements the rewriter had to parse and rewrite.", MetricType::Counter);
  add_counter(misses, static_cast<double>(s.rewrite_cache_misses));
  out.push_back(std::move(misses));

  auto protocol = family("seedproxy_protocol_errors_total",
                         "Protocol violations that ended a session, by the side that broke it.",
                         MetricType::Counter);
  for (std::size_t i = 0; i < peer_count; ++i) {
    add_counter(protocol, static_cast<double>(s.protocol_errors[i]),
                {{"peer", std::string(to_string(static_cast<Peer>(i)))}});
  }
  out.push_back(std::move(protocol));
  add_tls_family(out, s);
  add_server_pool_families(out, s);

  auto reads =
      family("seedproxy_attribute_reads_total",
             "Statements through this proxy that read a virtual attribute.", MetricType::Counter);
  for (const auto& r : s.attribute_reads) {
    add_counter(reads, static_cast<double>(r.reads),
                seed_labels(r.database, r.entity, r.attribute));
  }
  out.push_back(std::move(reads));

  auto dropped = family("seedproxy_attribute_reads_dropped_total",
                        "Attribute reads not labelled because too many distinct attributes "
                        "were seen (should stay 0).",
                        MetricType::Counter);
  add_counter(dropped, static_cast<double>(s.attribute_reads_dropped));
  out.push_back(std::move(dropped));
}

void add_seed_families(const std::vector<seeds::SeedStatus>& statuses,
                       const std::vector<SeedThreshold>& thresholds,
                       std::vector<MetricFamily>& out) {
  auto phase = family("seedproxy_seed_phase", "1 for the phase each seed is in, 0 for the others.",
                      MetricType::Gauge);
  auto inactive = family("seedproxy_seed_inactive",
                         "1 for a seed the registry has live that this proxy does not serve (SHOW "
                         "SEEDS says why and what to do), 0 for the others.",
                         MetricType::Gauge);
  auto window = family("seedproxy_attribute_reads_in_window",
                       "Reads of a seed in its current materialization window, all proxies "
                       "together (from the registry).",
                       MetricType::Gauge);
  auto broken = family("seedproxy_seed_dependency_broken",
                       "1 while DDL has broken a table or column a materializing or materialized "
                       "cross-table seed reads (SHOW SEEDS says what to do), else 0.",
                       MetricType::Gauge);
  for (const auto& seed : statuses) {
    const std::string entity = entity_label(seed.schema, seed.table);
    add_gauge(broken, seed.dependency_broken ? 1 : 0,
              seed_labels(seed.database, entity, seed.attribute));
    // Every phase, each exported so a dashboard sees 0 → 1 flips.
    for (const rewriter::Phase each : rewriter::all_phases) {
      auto labels = seed_labels(seed.database, entity, seed.attribute);
      labels.push_back({"phase", std::string(rewriter::to_string(each))});
      add_gauge(phase, each == seed.phase ? 1 : 0, std::move(labels));
    }
    add_gauge(inactive, seed.inactive ? 1 : 0, seed_labels(seed.database, entity, seed.attribute));
    add_gauge(window, static_cast<double>(seed.reads_in_window),
              seed_labels(seed.database, entity, seed.attribute));
  }
  out.push_back(std::move(phase));
  out.push_back(std::move(inactive));
  out.push_back(std::move(window));
  out.push_back(std::move(broken));

  auto threshold = family("seedproxy_attribute_materialize_threshold_reads",
                          "Reads in the window at which a seed with policy \"threshold\" is "
                          "materialized.",
                          MetricType::Gauge);
  auto window_length =
      family("seedproxy_attribute_materialize_window_seconds",
             "Length of the window the read threshold is counted over.", MetricType::Gauge);
  for (const auto& t : thresholds) {
    if (t.policy != config::MaterializePolicy::threshold) continue;
    const std::string entity = entity_label(t.schema, t.table);
    add_gauge(threshold, static_cast<double>(t.reads),
              seed_labels(t.database, entity, t.attribute));
    add_gauge(window_length, static_cast<double>(t.window_seconds),
              seed_labels(t.database, entity, t.attribute));
  }
  out.push_back(std::move(threshold));
  out.push_back(std::move(window_length));
}

void add_materialization_families(const std::vector<seeds::MaterializationStatus>& progress,
                                  std::vector<MetricFamily>& out) {
  auto done =
      family("seedproxy_materialization_rows_done",
             "Rows backfilled so far by the running materialization of a seed.", MetricType::Gauge);
  auto total = family("seedproxy_materialization_rows_total",
                      "Rows the running materialization of a seed has to backfill (estimate).",
                      MetricType::Gauge);
  auto rate =
      family("seedproxy_materialization_rows_per_second",
             "Recent backfill rate of the running materialization of a seed.", MetricType::Gauge);
  auto eta = family("seedproxy_materialization_eta_seconds",
                    "Estimated seconds until the backfill of a seed ends (absent while unknown).",
                    MetricType::Gauge);
  auto slowdown = family("seedproxy_materialization_slowdown",
                         "How many times longer the backfill pauses than its own pace asks, "
                         "because the clients' p99 latency rose (1: not slowed).",
                         MetricType::Gauge);
  auto waiting = family("seedproxy_materialization_waiting_proxies",
                        "Live proxies that do not serve a seed's newest phase yet: the engine "
                        "waits for them before it changes the schema.",
                        MetricType::Gauge);
  for (const auto& p : progress) {
    const std::string entity = entity_label(p.schema, p.table);
    add_gauge(waiting, static_cast<double>(p.waiting_proxies),
              seed_labels(p.database, entity, p.attribute));
    add_gauge(done, static_cast<double>(p.rows_done), seed_labels(p.database, entity, p.attribute));
    add_gauge(total, static_cast<double>(p.rows_total),
              seed_labels(p.database, entity, p.attribute));
    add_gauge(rate, p.rows_per_second, seed_labels(p.database, entity, p.attribute));
    if (p.running_here)
      add_gauge(slowdown, p.slowdown, seed_labels(p.database, entity, p.attribute));
    if (p.eta_seconds) {
      add_gauge(eta, *p.eta_seconds, seed_labels(p.database, entity, p.attribute));
    }
  }
  out.push_back(std::move(done));
  out.push_back(std::move(total));
  out.push_back(std::move(rate));
  out.push_back(std::move(eta));
  out.push_back(std::move(slowdown));
  out.push_back(std::move(waiting));
}

void add_process_families(std::vector<MetricFamily>& out) {
  const ProcessStats p = read_process_stats();
  auto add = [&](std::string name, std::string help, MetricType type,
                 const std::optional<double>& value) {
    if (!value) return;
    auto f = family(std::move(name), std::move(help), type);
    if (type == MetricType::Counter) {
      add_counter(f, *value);
    } else {
      add_gauge(f, *value);
    }
    out.push_back(std::move(f));
  };
  add("process_cpu_seconds_total", "User and system CPU time spent by the process.",
      MetricType::Counter, p.cpu_seconds);
  add("process_resident_memory_bytes", "Resident memory size.", MetricType::Gauge,
      p.resident_memory_bytes);
  add("process_virtual_memory_bytes", "Virtual memory size.", MetricType::Gauge,
      p.virtual_memory_bytes);
  add("process_open_fds", "Open file descriptors.", MetricType::Gauge, p.open_fds);
  add("process_max_fds", "Limit on open file descriptors.", MetricType::Gauge, p.max_fds);
  add("process_start_time_seconds", "Start time of the process since the Unix epoch.",
      MetricType::Gauge, p.start_time_seconds);
}

}  // namespace

Metrics::Metrics(const ProxyStats& stats, StatusSources sources)
    : stats_(stats), sources_(std::move(sources)) {}

std::vector<MetricFamily> Metrics::Collect() const {
  std::vector<MetricFamily> out;
  add_proxy_families(stats_.snapshot(), out);
  add_seed_families(call(sources_.seeds, "seed statuses"),
                    call(sources_.thresholds, "seed thresholds"), out);
  add_materialization_families(call(sources_.materializations, "materialization progress"), out);
  add_process_families(out);
  return out;
}

std::string Metrics::scrape() const {
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, Collect());
  return std::move(text).str();
}

}  // namespace seedproxy::proxy
