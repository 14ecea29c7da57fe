// What the admin console asks of the running server: seeds, clients, counters, configuration,
// reload. The server implements it; the console never touches server internals.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "seeds/materialize/materialization_engine.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::proxy {

// One live client session, as SHOW CLIENTS lists it.
struct ClientInfo {
  std::uint64_t id = 0;
  std::string user;
  std::string database;
  std::string address;  // "ip:port" of the client
  std::string state;    // "startup", "idle", "active", "idle in transaction", "admin console", ...
  std::chrono::system_clock::time_point connected_at;
  double age_seconds = 0;
  std::uint32_t backend_pid = 0;  // 0: no upstream backend (yet)
  bool rewriting = false;
  std::string tls_version;  // "TLSv1.3"; empty: plain text
  std::string tls_cipher;
  std::string auth;         // who checked the password: "relay", or the proxy's mechanism
  bool server_tls = false;  // the upstream connection is encrypted
};

// One backend parked for the next client (server_pool), as SHOW POOLS counts them.
struct ParkedServerInfo {
  std::string user;
  std::string database;
  std::uint32_t backend_pid = 0;
  double parked_seconds = 0;
  bool tls = false;
};

// Totals since the proxy started, as SHOW STATS lists them.
struct ProxyStats {
  std::uint64_t clients_accepted = 0;
  std::uint64_t clients_refused = 0;  // limits.max_clients reached, or not an admin user
  std::uint64_t clients_now = 0;
  std::uint64_t statements_rewritten = 0;
  std::uint64_t bytes_from_clients = 0;
  std::uint64_t bytes_from_server = 0;
  std::uint64_t reloads_ok = 0;
  std::uint64_t reloads_failed = 0;
  double uptime_seconds = 0;
};

class AdminBackend {
 public:
  virtual ~AdminBackend() = default;

  [[nodiscard]] virtual std::vector<seeds::SeedStatus> seed_statuses() = 0;
  // Gathers from every I/O thread; resumes on the caller's executor.
  [[nodiscard]] virtual boost::asio::awaitable<std::vector<ClientInfo>> clients() = 0;
  // The backends parked by every I/O thread (server_pool); resumes on the caller's executor.
  [[nodiscard]] virtual boost::asio::awaitable<std::vector<ParkedServerInfo>> parked_servers() = 0;
  [[nodiscard]] virtual ProxyStats stats() = 0;
  // The configuration in force (after reloads) and the file it came from.
  [[nodiscard]] virtual std::shared_ptr<const config::Config> configuration() = 0;
  [[nodiscard]] virtual std::string config_path() = 0;
  // Reloads the configuration file off the I/O threads; the refusal, or nullopt when applied.
  [[nodiscard]] virtual boost::asio::awaitable<std::optional<std::string>> reload() = 0;
  // Every seed with a materialization (running, finished or requested), newest known progress.
  [[nodiscard]] virtual std::vector<seeds::MaterializationStatus> materializations() = 0;
  // Hands MATERIALIZE / ROLLBACK / PAUSE / RESUME to the engine and resumes, on the caller's
  // executor, once the engine has answered it (job->done).
  [[nodiscard]] virtual boost::asio::awaitable<void> engine_job(
      std::shared_ptr<seeds::EngineJob> job) = 0;
  // KILL db: ends this proxy's sessions to `database` and closes every connection the proxy
  // holds to it (registry, materialization, read counts) until a session to it begins again.
  // Resumes, on the caller's executor, once those connections are closed; the number of
  // sessions told to end.
  [[nodiscard]] virtual boost::asio::awaitable<std::uint64_t> kill_database(
      std::string database) = 0;
  // A login that PostgreSQL accepted but admin.users does not list.
  virtual void admin_refused() noexcept = 0;
};

}  // namespace seedproxy::proxy
