// The JSON configuration: strict parsing into the typed model, errors that name the field.
#include "config/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>

#include "common/identifiers.hpp"
#include "common/text.hpp"
#include "config/json_readers.hpp"
#include "config/security_sections.hpp"
#include "config/server_pool_section.hpp"
#include "config/strict_json.hpp"
#include "config/upstream_section.hpp"

namespace seedproxy::config {

using detail::element_path;
using detail::Json;
using detail::json_string;
using detail::member_path;
using namespace detail;  // the typed readers (json_readers.hpp)

ConfigError::ConfigError(std::string field, const std::string& message)
    : std::runtime_error(field.empty() ? message : field + ": " + message),
      field_(std::move(field)) {}

namespace {

constexpr std::uint64_t max_reads = std::numeric_limits<std::int64_t>::max();  // a bigint
constexpr std::uint64_t max_window_seconds = 366ull * 86400;

constexpr std::array<std::pair<std::string_view, MaterializePolicy>, 3> policy_names{{
    {"threshold", MaterializePolicy::threshold},
    {"never", MaterializePolicy::never},
    {"manual", MaterializePolicy::manual},
}};
constexpr std::array<std::pair<std::string_view, LogLevel>, 4> level_names{{
    {"debug", LogLevel::debug},
    {"info", LogLevel::info},
    {"warning", LogLevel::warning},
    {"error", LogLevel::error},
}};
constexpr std::array<std::pair<std::string_view, LogFormat>, 2> format_names{{
    {"text", LogFormat::text},
    {"json", LogFormat::json},
}};

// ---- SQL names -----------------------------------------------------------------------------

[[nodiscard]] bool identifier_start(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
[[nodiscard]] bool identifier_part(char c) noexcept {
  return identifier_start(c) || (c >= '0' && c <= '9') || c == '$';
}

[[nodiscard]] bool plain_identifier(std::string_view text) noexcept {
  return !text.empty() && text.size() <= pg::max_identifier_bytes &&
         identifier_start(text.front()) &&
         std::all_of(text.begin() + 1, text.end(), identifier_part);
}

// One identifier of an entity name starting at text[at], as PostgreSQL would resolve it:
// unquoted names fold to lower case, "quoted" ones keep theirs ("" inside is one quote).
[[nodiscard]] std::optional<std::string> take_identifier(std::string_view text, std::size_t& at,
                                                         const std::string& path) {
  std::string name;
  if (at < text.size() && text[at] == '"') {
    for (++at;; ++at) {
      if (at >= text.size()) return std::nullopt;  // unterminated
      if (text[at] == '"') {
        if (at + 1 < text.size() && text[at + 1] == '"') {
          name += '"';
          ++at;
          continue;
        }
        ++at;
        break;
      }
      name += text[at];
    }
    if (name.empty()) return std::nullopt;
  } else {
    const std::size_t start = at;
    if (at >= text.size() || !identifier_start(text[at])) return std::nullopt;
    while (at < text.size() && identifier_part(text[at])) ++at;
    name = text::ascii_lower(text.substr(start, at - start));
  }
  if (name.size() > pg::max_identifier_bytes)
    throw ConfigError(path, "the identifier " + shown_string(name) + " is longer than " +
                                std::to_string(pg::max_identifier_bytes) + " bytes");
  return name;
}

// "table" or "schema.table" → {schema, table}, with schema public by default.
[[nodiscard]] std::pair<std::string, std::string> resolve_entity(const std::string& entity,
                                                                 const std::string& path) {
  std::size_t at = 0;
  auto first = take_identifier(entity, at, path);
  std::optional<std::string> second;
  bool ok = first.has_value();
  if (ok && at < entity.size()) {
    ok = entity[at] == '.';
    ++at;
    if (ok) second = take_identifier(entity, at, path);
    ok = ok && second.has_value() && at == entity.size();
  }
  if (!ok)
    throw ConfigError(path,
                      "expected \"table\" or \"schema.table\" (each an identifier such as "
                      "account or a double-quoted name such as \"Account\"), got " +
                          shown_string(entity));
  if (!second) return {"public", std::move(*first)};
  return {std::move(*first), std::move(*second)};
}

// ---- sections ------------------------------------------------------------------------------

[[nodiscard]] Endpoint read_endpoint(const Json& node, const std::string& path, Endpoint endpoint,
                                     bool port_required) {
  const Object object(node, path, {"host", "port"});
  if (const Json* host = object.find("host"))
    endpoint.host = read_string(*host, object.path("host"));
  const Json* port = port_required ? &object.require("port") : object.find("port");
  if (port)
    endpoint.port = static_cast<std::uint16_t>(read_integer(*port, object.path("port"), 1, 65535));
  return endpoint;
}

[[nodiscard]] Control read_control(const Json& node) {
  const Object object(node, "control", {"user", "password"});
  Control control;
  if (const Json* user = object.find("user"))
    control.user = read_string(*user, object.path("user"));
  if (const Json* password = object.find("password"))
    control.password = read_string(*password, object.path("password"), /*non_empty=*/false);
  return control;
}

[[nodiscard]] Admin read_admin(const Json& node) {
  const Object object(node, "admin", {"users", "auth_database"});
  Admin admin;
  if (const Json* database = object.find("auth_database"))
    admin.auth_database = read_string(*database, object.path("auth_database"));
  const Json* users = object.find("users");
  if (users == nullptr) return admin;
  const std::string path = object.path("users");
  if (!users->is_array()) fail_expected(path, "an array of user names", *users);
  for (std::size_t i = 0; i < users->size(); ++i) {
    const std::string item_path = element_path(path, i);
    std::string user = read_string((*users)[i], item_path);
    const auto seen = std::find(admin.users.begin(), admin.users.end(), user);
    if (seen != admin.users.end())
      throw ConfigError(item_path, json_string(user) + " is already listed at " +
                                       element_path(path, seen - admin.users.begin()));
    admin.users.push_back(std::move(user));
  }
  return admin;
}

[[nodiscard]] Materialize read_materialize(const Json& node, const std::string& path) {
  const Object object(node, path, {"policy", "reads", "window_seconds"});
  Materialize materialize;
  if (const Json* policy = object.find("policy"))
    materialize.policy = read_enum(*policy, object.path("policy"), policy_names);
  if (const Json* reads = object.find("reads"))
    materialize.reads = read_integer(*reads, object.path("reads"), 1, max_reads);
  if (const Json* window = object.find("window_seconds"))
    materialize.window_seconds =
        read_integer(*window, object.path("window_seconds"), 1, max_window_seconds);
  return materialize;
}

// What identifies a seed, as PostgreSQL resolves names: database, schema, table, attribute.
using SeedKey = std::tuple<std::string, std::string, std::string, std::string>;

[[nodiscard]] std::pair<SeedSpec, SeedKey> read_seed(const Json& node, const std::string& path) {
  const Object object(node, path,
                      {"database", "entity", "attribute", "type", "expression", "materialize"});
  SeedSpec seed;
  seed.database = read_string(object.require("database"), object.path("database"));
  seed.entity = read_string(object.require("entity"), object.path("entity"));
  auto [schema, table] = resolve_entity(seed.entity, object.path("entity"));
  seed.attribute = read_string(object.require("attribute"), object.path("attribute"));
  if (!plain_identifier(seed.attribute))
    fail_expected(object.path("attribute"),
                  "a plain identifier matching [A-Za-z_][A-Za-z0-9_$]* of at most 63 bytes",
                  object.require("attribute"), true);
  seed.type = read_string(object.require("type"), object.path("type"));
  seed.expression = read_string(object.require("expression"), object.path("expression"));
  if (const Json* materialize = object.find("materialize"))
    seed.materialize = read_materialize(*materialize, object.path("materialize"));
  SeedKey key{seed.database, std::move(schema), std::move(table),
              text::ascii_lower(seed.attribute)};
  return {std::move(seed), std::move(key)};
}

[[nodiscard]] std::vector<SeedSpec> read_seeds(const Json& node) {
  if (!node.is_array()) fail_expected("seeds", "an array of seed objects", node);
  std::vector<SeedSpec> seeds;
  std::map<SeedKey, std::size_t> seen;  // → index of the seed that declared it first
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string path = element_path("seeds", i);
    auto [seed, key] = read_seed(node[i], path);
    const auto [it, fresh] = seen.try_emplace(std::move(key), i);
    if (!fresh) {
      const auto& [database, schema_name, table_name, attribute] = it->first;
      throw ConfigError(path, "declares the same attribute as " +
                                  element_path("seeds", it->second) + " (" + schema_name + "." +
                                  table_name + "." + attribute + " in database " +
                                  json_string(database) + "); an attribute can have only one seed");
    }
    seeds.push_back(std::move(seed));
  }
  return seeds;
}

[[nodiscard]] Limits read_limits(const Json& node) {
  const Object object(
      node, "limits",
      {"max_message_bytes", "max_clients", "startup_timeout_seconds", "connect_timeout_seconds",
       "max_authenticating", "max_authenticating_per_address"});
  Limits limits;
  if (const Json* bytes = object.find("max_message_bytes"))
    limits.max_message_bytes =
        read_integer(*bytes, object.path("max_message_bytes"), 1024, std::uint64_t{1} << 30);
  if (const Json* clients = object.find("max_clients"))
    limits.max_clients =
        static_cast<std::uint32_t>(read_integer(*clients, object.path("max_clients"), 1, 1000000));
  if (const Json* startup = object.find("startup_timeout_seconds"))
    limits.startup_timeout_seconds =
        read_seconds(*startup, object.path("startup_timeout_seconds"), false);
  if (const Json* connect = object.find("connect_timeout_seconds"))
    limits.connect_timeout_seconds =
        read_seconds(*connect, object.path("connect_timeout_seconds"), false);
  if (const Json* total = object.find("max_authenticating"))
    limits.max_authenticating = static_cast<std::uint32_t>(
        read_integer(*total, object.path("max_authenticating"), 1, 1000000));
  if (const Json* per_address = object.find("max_authenticating_per_address"))
    limits.max_authenticating_per_address = static_cast<std::uint32_t>(
        read_integer(*per_address, object.path("max_authenticating_per_address"), 1, 1000000));
  return limits;
}

[[nodiscard]] Runtime read_runtime(const Json& node) {
  const Object object(node, "runtime", {"threads", "shutdown_grace_seconds"});
  Runtime runtime;
  if (const Json* threads = object.find("threads"))
    runtime.threads =
        static_cast<std::uint32_t>(read_integer(*threads, object.path("threads"), 1, 256));
  if (const Json* grace = object.find("shutdown_grace_seconds"))
    runtime.shutdown_grace_seconds =
        read_seconds(*grace, object.path("shutdown_grace_seconds"), true);
  return runtime;
}

[[nodiscard]] Reload read_reload(const Json& node) {
  const Object object(node, "reload", {"watch_file"});
  Reload reload;
  if (const Json* watch = object.find("watch_file"))
    reload.watch_file = read_bool(*watch, object.path("watch_file"));
  return reload;
}

[[nodiscard]] Registry read_registry(const Json& node) {
  const Object object(node, "registry", {"lease_seconds", "refresh_seconds"});
  Registry registry;
  if (const Json* lease = object.find("lease_seconds")) {
    registry.lease_seconds = read_seconds(*lease, object.path("lease_seconds"), false);
    if (registry.lease_seconds < 0.5)
      throw ConfigError(object.path("lease_seconds"),
                        "is " + std::to_string(registry.lease_seconds) +
                            "; a lease shorter than 0.5 s cannot be renewed reliably");
  }
  if (const Json* refresh = object.find("refresh_seconds"))
    registry.refresh_seconds = read_seconds(*refresh, object.path("refresh_seconds"), false);
  return registry;
}

[[nodiscard]] Materialization read_materialization(const Json& node,
                                                   std::vector<std::string>& warnings) {
  const Object object(node, "materialization",
                      {"enabled", "lock_timeout_seconds", "target_batch_seconds",
                       "initial_batch_rows", "min_batch_rows", "max_batch_rows", "pause_ratio",
                       "latency_ratio", "latency_allowance_seconds", "phase_grace_seconds",
                       "progress_log_seconds", "reads_flush_seconds", "check_seconds"});
  Materialization m;
  if (const Json* enabled = object.find("enabled"))
    m.enabled = read_bool(*enabled, object.path("enabled"));
  const auto seconds = [&](const char* key, double& out, bool zero_allowed) {
    if (const Json* value = object.find(key))
      out = read_seconds(*value, object.path(key), zero_allowed);
  };
  seconds("lock_timeout_seconds", m.lock_timeout_seconds, false);
  seconds("target_batch_seconds", m.target_batch_seconds, false);
  if (const Json* grace = object.find("phase_grace_seconds")) {
    // Files written for versions that waited a fixed time keep loading; the value is ignored.
    (void)read_seconds(*grace, object.path("phase_grace_seconds"), true);
    warnings.push_back(object.path("phase_grace_seconds") +
                       " is deprecated and ignored: the engine changes the schema once every live "
                       "proxy has acknowledged the new phase (registry.lease_seconds bounds the "
                       "wait for a silent one); remove the key");
  }
  seconds("progress_log_seconds", m.progress_log_seconds, false);
  seconds("reads_flush_seconds", m.reads_flush_seconds, false);
  seconds("check_seconds", m.check_seconds, false);
  seconds("latency_allowance_seconds", m.latency_allowance_seconds, true);
  const auto rows = [&](const char* key, std::uint64_t& out) {
    if (const Json* value = object.find(key))
      out = read_integer(*value, object.path(key), 1, 10000000);
  };
  rows("initial_batch_rows", m.initial_batch_rows);
  rows("min_batch_rows", m.min_batch_rows);
  rows("max_batch_rows", m.max_batch_rows);
  if (m.min_batch_rows > m.max_batch_rows)
    throw ConfigError(object.path("min_batch_rows"), "is " + std::to_string(m.min_batch_rows) +
                                                         ", more than max_batch_rows (" +
                                                         std::to_string(m.max_batch_rows) + ")");
  if (m.initial_batch_rows < m.min_batch_rows || m.initial_batch_rows > m.max_batch_rows)
    throw ConfigError(object.path("initial_batch_rows"),
                      "is " + std::to_string(m.initial_batch_rows) +
                          ", outside min_batch_rows..max_batch_rows (" +
                          std::to_string(m.min_batch_rows) + ".." +
                          std::to_string(m.max_batch_rows) + ")");
  if (const Json* ratio = object.find("pause_ratio")) {
    m.pause_ratio = ratio->is_number() ? ratio->get<double>() : -1.0;
    if (!ratio->is_number() || !(m.pause_ratio >= 0.0 && m.pause_ratio <= 100.0))
      fail_expected(object.path("pause_ratio"), "a number between 0 and 100", *ratio);
  }
  if (const Json* ratio = object.find("latency_ratio")) {
    m.latency_ratio = ratio->is_number() ? ratio->get<double>() : -1.0;
    if (!ratio->is_number() ||
        !(m.latency_ratio == 0.0 || (m.latency_ratio >= 1.05 && m.latency_ratio <= 100.0)))
      fail_expected(object.path("latency_ratio"), "0 (off) or a number between 1.05 and 100",
                    *ratio);
  }
  return m;
}

[[nodiscard]] Log read_log(const Json& node) {
  const Object object(node, "log", {"level", "format"});
  Log log;
  if (const Json* level = object.find("level"))
    log.level = read_enum(*level, object.path("level"), level_names);
  if (const Json* format = object.find("format"))
    log.format = read_enum(*format, object.path("format"), format_names);
  return log;
}

constexpr std::array<std::pair<std::string_view, CostAction>, 2> cost_action_names{{
    {"refuse", CostAction::refuse},
    {"warn", CostAction::warn},
}};

[[nodiscard]] Validation read_validation(const Json& node) {
  const Object object(
      node, "validation",
      {"statement_timeout_seconds", "sample_rows", "max_cost_ratio", "cost_action"});
  Validation validation;
  if (const Json* timeout = object.find("statement_timeout_seconds"))
    validation.statement_timeout_seconds =
        read_seconds(*timeout, object.path("statement_timeout_seconds"), false);
  if (const Json* rows = object.find("sample_rows"))
    validation.sample_rows =
        static_cast<std::uint32_t>(read_integer(*rows, object.path("sample_rows"), 1, 100000));
  if (const Json* ratio = object.find("max_cost_ratio")) {
    const std::string path = object.path("max_cost_ratio");
    if (!ratio->is_number() || ratio->get<double>() < 1.0 || ratio->get<double>() > 1e12)
      fail_expected(path, "a number from 1 to 1e12", *ratio);
    validation.max_cost_ratio = ratio->get<double>();
  }
  if (const Json* action = object.find("cost_action"))
    validation.cost_action = read_enum(*action, object.path("cost_action"), cost_action_names);
  return validation;
}

// "<hostname>:<listen port>": stable across restarts of the same proxy on the same machine.
[[nodiscard]] std::string default_instance(std::uint16_t port) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::strcpy(host, "localhost");
  return std::string(host) + ":" + std::to_string(port);
}

// Mistakes no single field shows: the proxy dialling itself, two listeners on one port.
// Only literal equality is caught; "localhost" and "127.0.0.1" are not resolved here.
void check_addresses(const Config& config) {
  for (const auto& host : config.upstream.hosts)
    if (host == config.listen)
      throw ConfigError("upstream", "is the proxy's own listen address " + config.listen.host +
                                        ":" + std::to_string(config.listen.port) +
                                        ", so the proxy would connect to itself");
  if (config.metrics && config.metrics->host == config.listen.host &&
      config.metrics->port == config.listen.port)
    throw ConfigError("metrics.port", std::to_string(config.metrics->port) + " on " +
                                          config.listen.host + " is already the listen port");
}

}  // namespace

Config parse_config(std::string_view json_text) {
  const std::string_view bom = "\xEF\xBB\xBF";  // the JSON reader skips it too
  const std::string_view body =
      json_text.substr(0, bom.size()) == bom ? json_text.substr(bom.size()) : json_text;
  if (blank(body)) throw ConfigError("", "the configuration is empty; expected a JSON object");
  const Json root = detail::parse_strict_json(json_text);
  if (!root.is_object())
    throw ConfigError("", "expected the configuration to be a JSON object, got " + describe(root));

  const Object top(root, "",
                   {"listen", "upstream", "control", "metrics", "admin", "ddl_seeds", "seeds",
                    "limits", "runtime", "log", "reload", "instance", "materialization",
                    "client_tls", "server_tls", "auth", "server_pool", "registry", "validation"});
  Config config;
  if (const Json* listen = top.find("listen"))
    config.listen = read_endpoint(*listen, "listen", config.listen, false);
  if (const Json* upstream = top.find("upstream")) config.upstream = read_upstream(*upstream);
  if (const Json* control = top.find("control")) config.control = read_control(*control);
  if (const Json* metrics = top.find("metrics"))
    config.metrics = read_endpoint(*metrics, "metrics", Endpoint{"127.0.0.1", 0}, true);
  if (const Json* admin = top.find("admin")) config.admin = read_admin(*admin);
  if (const Json* ddl_seeds = top.find("ddl_seeds"))
    config.ddl_seeds = read_bool(*ddl_seeds, "ddl_seeds");
  if (const Json* seeds = top.find("seeds")) config.seeds = read_seeds(*seeds);
  if (const Json* limits = top.find("limits")) config.limits = read_limits(*limits);
  if (const Json* runtime = top.find("runtime")) config.runtime = read_runtime(*runtime);
  if (const Json* log = top.find("log")) config.log = read_log(*log);
  if (const Json* reload = top.find("reload")) config.reload = read_reload(*reload);
  if (const Json* materialization = top.find("materialization"))
    config.materialization = read_materialization(*materialization, config.warnings);
  if (const Json* registry = top.find("registry")) config.registry = read_registry(*registry);
  if (const Json* validation = top.find("validation"))
    config.validation = read_validation(*validation);
  if (const Json* tls = top.find("client_tls")) config.client_tls = read_client_tls(*tls);
  if (const Json* tls = top.find("server_tls")) config.server_tls = read_server_tls(*tls);
  if (const Json* auth = top.find("auth")) config.auth = read_auth(*auth);
  if (const Json* pool = top.find("server_pool")) config.server_pool = read_server_pool(*pool);
  settle_security(config);
  check_server_pool(config);
  check_addresses(config);
  if (const Json* instance = top.find("instance"))
    config.instance = read_string(*instance, "instance");
  else
    config.instance = default_instance(config.listen.port);
  return config;
}

Config load_config_file(const std::filesystem::path& path) {
  const auto unreadable = [&](int error) {
    return ConfigError("", "cannot read configuration file " + json_string(path.string()) + ": " +
                               std::generic_category().message(error));
  };
  const std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                             &std::fclose);
  if (!file) throw unreadable(errno);
  std::string text;
  char buffer[65536];
  errno = 0;
  for (;;) {
    const std::size_t n = std::fread(buffer, 1, sizeof buffer, file.get());
    text.append(buffer, n);
    if (n < sizeof buffer) break;
  }
  // A directory opens fine on Linux; reading it is what fails (EISDIR).
  if (std::ferror(file.get())) throw unreadable(errno != 0 ? errno : EIO);
  return parse_config(text);
}

std::string_view to_string(MaterializePolicy policy) noexcept {
  for (const auto& [name, value] : policy_names)
    if (value == policy) return name;
  return "threshold";
}

std::optional<MaterializePolicy> policy_from_string(std::string_view text) noexcept {
  for (const auto& [name, value] : policy_names)
    if (name == text) return value;
  return std::nullopt;
}

std::string_view to_string(SslMode mode) noexcept {
  switch (mode) {
    case SslMode::disable:
      return "disable";
    case SslMode::allow:
      return "allow";
    case SslMode::prefer:
      return "prefer";
    case SslMode::require:
      return "require";
    case SslMode::verify_ca:
      return "verify-ca";
    case SslMode::verify_full:
      return "verify-full";
  }
  return "disable";
}

std::string_view to_string(CostAction action) noexcept {
  return action == CostAction::warn ? "warn" : "refuse";
}

std::string_view to_string(AuthMode mode) noexcept {
  return mode == AuthMode::proxy ? "proxy" : "relay";
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warning:
      return "warning";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

}  // namespace seedproxy::config
