// Config fuzzing: parse_config returns a config within its bounds or throws only ConfigError.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <typeinfo>

#include "common/text.hpp"
#include "config/config.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace seedproxy::config;

// Error messages reach stderr, logs and an admin's psql (RELOAD): well-formed UTF-8 only.
bool valid_utf8(std::string_view text) {
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t length = seedproxy::text::utf8_sequence_length(text, at);
    if (length == 0) return false;
    at += length;
  }
  return true;
}

bool seconds_ok(double value, bool zero_allowed) {
  return std::isfinite(value) && (zero_allowed ? value >= 0.0 : value > 0.0) && value <= 86400.0;
}

// What the rest of the proxy may take for granted of a configuration parse_config returned.
void check_bounds(const Config& config) {
  FUZZ_CHECK(!config.instance.empty(), "an empty instance name");
  FUZZ_CHECK(config.listen.port >= 1, "port 0");
  FUZZ_CHECK(!config.upstream.hosts.empty() && config.upstream.hosts.size() <= 16,
             "upstream hosts: " + std::to_string(config.upstream.hosts.size()));
  FUZZ_CHECK(seconds_ok(config.upstream.check_seconds, false), "upstream.check_seconds");
  for (const auto& host : config.upstream.hosts) {
    FUZZ_CHECK(host.port >= 1 && !host.host.empty(), "upstream host without a port or name");
    FUZZ_CHECK(!(host == config.listen), "the upstream is the proxy itself");
  }
  if (config.metrics) FUZZ_CHECK(config.metrics->port >= 1, "metrics on port 0");
  const Limits& limits = config.limits;
  FUZZ_CHECK(limits.max_message_bytes >= 1024 && limits.max_message_bytes <= (1u << 30),
             "max_message_bytes " + std::to_string(limits.max_message_bytes));
  FUZZ_CHECK(limits.max_clients >= 1 && limits.max_clients <= 1000000, "max_clients");
  FUZZ_CHECK(seconds_ok(limits.startup_timeout_seconds, false) &&
                 seconds_ok(limits.connect_timeout_seconds, false),
             "a timeout out of bounds");
  FUZZ_CHECK(config.runtime.threads >= 1 && config.runtime.threads <= 256, "threads");
  FUZZ_CHECK(seconds_ok(config.runtime.shutdown_grace_seconds, true), "shutdown grace");
  const Materialization& m = config.materialization;
  FUZZ_CHECK(m.min_batch_rows >= 1 && m.min_batch_rows <= m.initial_batch_rows &&
                 m.initial_batch_rows <= m.max_batch_rows,
             "batch rows out of order");
  FUZZ_CHECK(std::isfinite(m.pause_ratio) && m.pause_ratio >= 0.0 && m.pause_ratio <= 100.0,
             "pause_ratio");
  FUZZ_CHECK(m.latency_ratio == 0.0 || (m.latency_ratio >= 1.05 && m.latency_ratio <= 100.0),
             "latency_ratio");
  FUZZ_CHECK(m.latency_allowance_seconds >= 0.0 && m.latency_allowance_seconds <= 86400.0,
             "latency_allowance_seconds");
  FUZZ_CHECK(seconds_ok(m.lock_timeout_seconds, false) &&
                 seconds_ok(m.target_batch_seconds, false) &&
                 seconds_ok(m.progress_log_seconds, false) &&
                 seconds_ok(m.reads_flush_seconds, false) && seconds_ok(m.check_seconds, false),
             "a materialization duration out of bounds");
  FUZZ_CHECK(config.registry.lease_seconds >= 0.5 &&
                 seconds_ok(config.registry.lease_seconds, false) &&
                 seconds_ok(config.registry.refresh_seconds, false),
             "a registry duration out of bounds");
  for (const auto& seed : config.seeds) {
    FUZZ_CHECK(!seed.database.empty() && !seed.entity.empty() && !seed.attribute.empty() &&
                   !seed.type.empty() && !seed.expression.empty(),
               "a seed with an empty field");
    FUZZ_CHECK(seed.materialize.reads >= 1 && seed.materialize.window_seconds >= 1,
               "a seed's materialize bounds");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    check_bounds(parse_config(text));
  } catch (const ConfigError& error) {
    const std::string_view message = error.what();
    FUZZ_CHECK(!message.empty(), "a ConfigError without a message");
    FUZZ_CHECK(error.field().empty() || message.starts_with(error.field() + ": "),
               "the message does not start with its field: " + seedproxy::fuzz::shown(message));
    FUZZ_CHECK(valid_utf8(message), "the message is not UTF-8: " + seedproxy::fuzz::shown(message));
  } catch (const std::exception& other) {
    FUZZ_CHECK(false, std::string("parse_config threw ") + typeid(other).name() + ": " +
                          seedproxy::fuzz::shown(other.what()));
  }
  // Anything else thrown is not caught: libFuzzer reports it as a crash.
  return 0;
}
