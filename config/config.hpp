// The JSON configuration: typed model, strict parsing, errors that name the offending field.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::config {

struct Endpoint {
  std::string host;
  std::uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

// libpq's target_session_attrs, for an upstream of several hosts: `read_write` follows the
// primary (a failover moves it), `any` takes the first host that answers.
enum class TargetSessionAttrs { any, read_write };

// Where PostgreSQL is: one host, or several tried in libpq's multi-host order (docs/failover.md).
struct Upstream {
  std::vector<Endpoint> hosts{{"127.0.0.1", 5432}};
  TargetSessionAttrs target_session_attrs = TargetSessionAttrs::read_write;
  // With several hosts: how often the proxy asks which one is the primary (it also asks at once
  // when a session could not connect to the one it was told).
  double check_seconds = 1.0;
  [[nodiscard]] bool several() const noexcept { return hosts.size() > 1; }
  bool operator==(const Upstream&) const = default;
};

// Credentials of the proxy's own libpq connections (catalog, registry, materialization).
struct Control {
  std::string user = "postgres";
  std::optional<std::string> password;
};

struct Admin {
  std::vector<std::string> users;
  // Admin console logins are authenticated by PostgreSQL against this database.
  std::string auth_database = "postgres";
};

struct Reload {
  // Poll the configuration file once a second and reload when it changes (SIGHUP and the admin
  // RELOAD work either way).
  bool watch_file = true;
};

enum class MaterializePolicy { threshold, never, manual };

struct Materialize {
  MaterializePolicy policy = MaterializePolicy::threshold;
  std::uint64_t reads = 100;
  std::uint64_t window_seconds = 86400;
};

// The Gradual Materialization Engine's settings (docs/materialization.md).
struct Materialization {
  bool enabled = true;  // false: this proxy never becomes a database's materializer
  double lock_timeout_seconds = 0.05;
  double target_batch_seconds = 0.1;
  std::uint64_t initial_batch_rows = 1000;
  std::uint64_t min_batch_rows = 10;
  std::uint64_t max_batch_rows = 100000;
  double pause_ratio = 0.5;
  // The backfill slows down while the clients' p99 transaction time is above this multiple of
  // their p99 in the 30 s before the materialization began, write trigger included in the rise
  // (0: it watches only its own batches and lock waits).
  double latency_ratio = 1.4;
  // ...but a rise of no more than this is never held against the backfill (0: the ratio alone).
  double latency_allowance_seconds = 0.0;
  double progress_log_seconds = 10.0;
  double reads_flush_seconds = 5.0;  // read counts to seedproxy.read_counts
  double check_seconds = 0.5;        // the materializer re-reads the registry

  bool operator==(const Materialization&) const = default;
};

// How this proxy follows the seed registries it shares with other proxies (docs/registry.md).
struct Registry {
  // This proxy's heartbeat rows are live this long after each renewal (renewed a third of it
  // apart); an engine waits at most this long for a proxy that went silent.
  double lease_seconds = 5.0;
  // Every followed registry and catalog is read again this often, notifications or not.
  double refresh_seconds = 30.0;

  bool operator==(const Registry&) const = default;
};

// What a seed's expression may cost, judged when it is validated (docs/seeds.md).
enum class CostAction { refuse, warn };
struct Validation {
  // The expression is evaluated for this many rows of its table under this statement_timeout.
  double statement_timeout_seconds = 2.0;
  std::uint32_t sample_rows = 10;
  // The planner's estimate of `SELECT expr FROM t` over that of `SELECT * FROM t`: past this
  // ratio the seed is refused (or only logged with cost_action warn).
  double max_cost_ratio = 10000.0;
  CostAction cost_action = CostAction::refuse;
  bool operator==(const Validation&) const = default;
};

struct SeedSpec {
  std::string database;
  std::string entity;  // "schema.table" or "table" (then public)
  std::string attribute;
  std::string type;
  std::string expression;
  Materialize materialize;
};

struct Limits {
  // Largest typed message accepted from an authenticated client (PostgreSQL's own limit is 1 GiB).
  // Before authentication the cap is 64 KiB; server messages are streamed and never buffered.
  std::uint64_t max_message_bytes = std::uint64_t{1} << 30;
  std::uint32_t max_clients = 10000;
  // A client that has not logged in (startup packet, TLS and the whole authentication exchange)
  // in this time is disconnected, as PgBouncer's client_login_timeout.
  double startup_timeout_seconds = 15.0;
  double connect_timeout_seconds = 5.0;
  // Sessions not yet logged in, each of which may hold a backend: past either bound a new client
  // is refused with 53300. Below PostgreSQL's default max_connections (100), so strangers stalled
  // at the password prompt cannot take every backend.
  std::uint32_t max_authenticating = 64;
  std::uint32_t max_authenticating_per_address = 16;
};

struct Runtime {
  std::uint32_t threads = 1;  // I/O threads, each with its own event loop
  double shutdown_grace_seconds = 30.0;
};

// TLS policies in libpq's and PgBouncer's vocabulary. On the client side (client_tls) they say
// what the proxy demands of clients; on the server side (server_tls) what it demands of
// PostgreSQL. `allow` is accepted only for clients (it means the same as prefer there).
enum class SslMode { disable, allow, prefer, require, verify_ca, verify_full };

// TLS towards clients (PgBouncer's client_tls_*).
struct ClientTls {
  SslMode sslmode = SslMode::disable;
  std::string cert_file;  // PEM; required unless sslmode is disable
  std::string key_file;   // PEM
  std::string ca_file;    // PEM; required by verify-ca and verify-full (client certificates)
  // TLS versions accepted: any of "TLSv1.2", "TLSv1.3".
  std::vector<std::string> protocols{"TLSv1.2", "TLSv1.3"};
  // OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are OpenSSL's defaults).
  std::string ciphers = "HIGH:!aNULL:!MD5:!3DES:!RC4";
  bool operator==(const ClientTls&) const = default;
};

// TLS towards PostgreSQL, for client sessions and every control connection alike.
struct ServerTls {
  SslMode sslmode = SslMode::disable;
  std::string ca_file;    // verify-ca, verify-full: the CA that signed the server's certificate
  std::string cert_file;  // optional client certificate the proxy presents
  std::string key_file;
  bool operator==(const ServerTls&) const = default;
};

// Who checks a client's password: PostgreSQL through the relayed exchange, or the proxy itself
// against the server's own secrets (docs/security.md).
enum class AuthMode { relay, proxy };

struct Auth {
  AuthMode mode = AuthMode::relay;      // default: proxy when TLS may run on both legs
  bool mode_set = false;                // whether the file chose the mode
  std::string user;                     // role that runs auth.query; default: control.user
  std::optional<std::string> password;  // its password; default: control.password
  std::string database = "postgres";    // where auth.query runs
  // Two columns (user name, stored secret) for the user given as $1; NULL secret: no password.
  std::string query =
      "SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = $1 "
      "AND (valuntil IS NULL OR valuntil > now())";
  bool query_set = false;  // whether the file set auth.query (absent with auth.file: file only)
  std::string file;        // PgBouncer's userlist format; checked before auth.query
  std::vector<std::string> trust_users;  // let in without a password (upstream must trust too)
  bool operator==(const Auth&) const = default;
};

// Server connections kept for the next client (PgBouncer's session pooling): a client that
// leaves an idle backend hands it, reset with `reset_query`, to the next client of the same
// user, database and startup parameters (docs/configuration.md). Only with auth.mode proxy,
// where the proxy itself vouches for every client it gives a backend to.
struct ServerPool {
  bool enabled = false;
  std::string reset_query = "DISCARD ALL";
  double idle_timeout_seconds = 600.0;  // a parked backend unused this long is closed
  double lifetime_seconds = 3600.0;     // a backend older than this is closed, not parked
  std::uint32_t max_idle = 100;         // parked backends per I/O thread
  bool operator==(const ServerPool&) const = default;
};

enum class LogFormat { text, json };
enum class LogLevel { debug, info, warning, error };

struct Log {
  LogLevel level = LogLevel::info;
  LogFormat format = LogFormat::text;
};

struct Config {
  // This proxy's stable name in the seed registry (who declared what). Default, filled in by
  // parse_config when the key is absent: "<hostname>:<listen port>".
  std::string instance;
  Endpoint listen{"127.0.0.1", 6432};
  Upstream upstream;
  Control control;
  std::optional<Endpoint> metrics;  // absent: no metrics listener
  Admin admin;
  bool ddl_seeds = false;
  std::vector<SeedSpec> seeds;
  Limits limits;
  Runtime runtime;
  Log log;
  Reload reload;
  Materialization materialization;
  ClientTls client_tls;
  ServerTls server_tls;
  Auth auth;
  ServerPool server_pool;
  Registry registry;
  Validation validation;
  // What the file says that still works but should change (deprecated keys), one sentence each
  // naming the key; the proxy logs them when it loads the file.
  std::vector<std::string> warnings;
};

// Thrown for any invalid configuration. `field` is the JSON path of the culprit, e.g.
// "listen.port" or "seeds[2].materialize.policy"; what() is a full sentence naming it.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string field, const std::string& message);
  [[nodiscard]] const std::string& field() const noexcept { return field_; }

 private:
  std::string field_;
};

// Parses and validates configuration text. Throws ConfigError.
[[nodiscard]] Config parse_config(std::string_view json_text);

// Reads and parses a file; an unreadable file is a ConfigError with an empty field.
[[nodiscard]] Config load_config_file(const std::filesystem::path& path);

// The policy's name as the configuration file and the registry spell it; policy_from_string()
// reads it back, nullopt for other text.
[[nodiscard]] std::string_view to_string(MaterializePolicy policy) noexcept;
[[nodiscard]] std::optional<MaterializePolicy> policy_from_string(std::string_view text) noexcept;
[[nodiscard]] std::string_view to_string(LogLevel level) noexcept;
[[nodiscard]] std::string_view to_string(SslMode mode) noexcept;
[[nodiscard]] std::string_view to_string(AuthMode mode) noexcept;
[[nodiscard]] std::string_view to_string(TargetSessionAttrs attrs) noexcept;
[[nodiscard]] std::string_view to_string(CostAction action) noexcept;
// "host:port", or each host so, comma-separated: for messages.
[[nodiscard]] std::string endpoint_text(const Endpoint& endpoint);
[[nodiscard]] std::string endpoint_text(const Upstream& upstream);

}  // namespace seedproxy::config
