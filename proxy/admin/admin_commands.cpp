// Answering admin console commands: rows from the AdminBackend, or a PostgreSQL-style error.
#include "proxy/admin/admin_commands.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>

#include "common/sqlstate.hpp"
#include "proxy/wire/messages.hpp"
#include "proxy/wire/result_set.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "seeds/materialize/progress.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using protocol::Column;
using protocol::ResultSet;
using protocol::Value;
namespace oid = protocol::type_oid;

constexpr std::string_view syntax_error = sqlstate::syntax_error;
constexpr std::string_view config_file_error = sqlstate::config_file_error;
std::string entity_of(const seeds::SeedStatus& seed) {
  return seed.schema.empty() ? seed.table : seed.schema + "." + seed.table;
}

std::string timestamp_text(std::chrono::system_clock::time_point when) {
  const auto seconds = std::chrono::system_clock::to_time_t(when);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(when.time_since_epoch()).count() %
      1000000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02d %02d:%02d:%02d.%06d+00", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(micros));
  return text;
}

Value nonempty(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return text;
}

AdminAnswer rows(const ResultSet& result) { return {result.encode("SHOW"), false}; }

AdminAnswer show_seeds(AdminBackend& backend) {
  ResultSet result({{"database", oid::text},
                    {"entity", oid::text},
                    {"attribute", oid::text},
                    {"type", oid::text},
                    {"phase", oid::text},
                    {"reads", oid::int8},
                    {"cross_table", oid::boolean},
                    {"declared_by", oid::text},
                    {"expression", oid::text},
                    {"problem", oid::text},
                    {"dependencies", oid::text},
                    {"materialize_refusal", oid::text},
                    {"dependency_error", oid::text}});
  for (const auto& seed : backend.seed_statuses())
    result.add_row(
        {seed.database, entity_of(seed), seed.attribute, seed.type,
         std::string(rewriter::to_string(seed.phase)) + (seed.inactive ? " (inactive)" : ""),
         std::to_string(seed.reads_in_window), protocol::bool_text(seed.cross_table),
         nonempty(seed.declared_by), seed.expression, nonempty(seed.problem),
         nonempty(seed.dependencies), nonempty(seed.materialize_refusal),
         nonempty(seed.dependency_error)});
  return rows(result);
}

AdminAnswer show_materializations(AdminBackend& backend) {
  ResultSet result({{"database", oid::text},
                    {"entity", oid::text},
                    {"attribute", oid::text},
                    {"step", oid::text},
                    {"paused", oid::boolean},
                    {"rows_done", oid::int8},
                    {"rows_total", oid::int8},
                    {"percent", oid::float8},
                    {"rows_per_second", oid::float8},
                    {"eta_seconds", oid::float8},
                    {"owner", oid::text},
                    {"error", oid::text},
                    {"updated_at", oid::timestamptz},
                    {"waiting_for", oid::text}});
  auto statuses = backend.materializations();
  std::sort(statuses.begin(), statuses.end(), [](const auto& a, const auto& b) {
    return std::tie(a.database, a.schema, a.table, a.attribute) <
           std::tie(b.database, b.schema, b.table, b.attribute);
  });
  for (const auto& m : statuses) {
    using Step = seeds::MaterializationStep;
    const bool finished = m.at_step(Step::materialized);
    Value percent;
    if (finished)
      percent = protocol::float8_text(100.0);
    else if (m.rows_total > 0 && (m.at_step(Step::backfilling) || m.at_step(Step::verifying)))
      percent = protocol::float8_text(
          std::min(100.0, 100.0 * double(m.rows_done) / double(m.rows_total)));
    Value rate, eta;
    if (m.rows_per_second > 0) rate = protocol::float8_text(m.rows_per_second);
    if (m.eta_seconds) eta = protocol::float8_text(*m.eta_seconds);
    result.add_row({m.database, m.schema + "." + m.table, m.attribute,
                    std::string(seeds::step_text(m)), protocol::bool_text(m.paused),
                    std::to_string(m.rows_done), std::to_string(m.rows_total), percent, rate, eta,
                    nonempty(m.owner), m.error, nonempty(m.updated_at), nonempty(m.waiting_for)});
  }
  return rows(result);
}

asio::awaitable<AdminAnswer> engine_command(const AdminCommand& command, AdminBackend& backend) {
  auto job = std::make_shared<seeds::EngineJob>();
  using Verb = seeds::EngineJob::Verb;
  std::string tag;
  switch (command.verb) {
    case AdminVerb::materialize:
      job->verb = Verb::materialize;
      tag = "MATERIALIZE";
      break;
    case AdminVerb::rollback:
      job->verb = Verb::rollback;
      tag = "ROLLBACK";
      break;
    case AdminVerb::pause:
      job->verb = Verb::pause;
      tag = "PAUSE";
      break;
    default:
      job->verb = Verb::resume;
      tag = "RESUME";
      break;
  }
  job->target = command.target;
  co_await backend.engine_job(job);
  if (!job->sqlstate.empty())
    co_return AdminAnswer{error_bytes({job->sqlstate, job->message, job->hint}), true};
  auto bytes = protocol::notice_response(job->message);
  const auto complete = protocol::command_complete(tag);
  bytes.insert(bytes.end(), complete.begin(), complete.end());
  co_return AdminAnswer{std::move(bytes), false};
}

asio::awaitable<AdminAnswer> show_clients(AdminBackend& backend) {
  auto clients = co_await backend.clients();
  std::sort(clients.begin(), clients.end(),
            [](const ClientInfo& a, const ClientInfo& b) { return a.id < b.id; });
  ResultSet result({{"id", oid::int8},
                    {"user", oid::text},
                    {"database", oid::text},
                    {"address", oid::text},
                    {"state", oid::text},
                    {"connected_at", oid::timestamptz},
                    {"age_seconds", oid::float8},
                    {"backend_pid", oid::int8},
                    {"rewriting", oid::boolean},
                    {"tls", oid::boolean},
                    {"tls_version", oid::text},
                    {"tls_cipher", oid::text},
                    {"auth", oid::text},
                    {"server_tls", oid::boolean}});
  for (const auto& client : clients)
    result.add_row({std::to_string(client.id), nonempty(client.user), nonempty(client.database),
                    client.address, client.state, timestamp_text(client.connected_at),
                    protocol::float8_text(client.age_seconds),
                    client.backend_pid ? Value(std::to_string(client.backend_pid)) : std::nullopt,
                    protocol::bool_text(client.rewriting),
                    protocol::bool_text(!client.tls_version.empty()), nonempty(client.tls_version),
                    nonempty(client.tls_cipher), nonempty(client.auth),
                    protocol::bool_text(client.server_tls)});
  co_return rows(result);
}

// One row per database and user with backends parked (server_pool), as PgBouncer's SHOW POOLS
// counts idle servers.
asio::awaitable<AdminAnswer> show_pools(AdminBackend& backend) {
  struct Pool {
    std::uint64_t parked = 0, tls = 0;
    double longest = 0;
  };
  std::map<std::pair<std::string, std::string>, Pool> pools;
  for (const auto& server : co_await backend.parked_servers()) {
    auto& pool = pools[{server.database, server.user}];
    ++pool.parked;
    pool.tls += server.tls ? 1 : 0;
    pool.longest = std::max(pool.longest, server.parked_seconds);
  }
  ResultSet result({{"database", oid::text},
                    {"user", oid::text},
                    {"parked", oid::int8},
                    {"parked_tls", oid::int8},
                    {"longest_parked_seconds", oid::float8}});
  for (const auto& [names, pool] : pools)
    result.add_row({names.first, names.second, std::to_string(pool.parked),
                    std::to_string(pool.tls), protocol::float8_text(pool.longest)});
  co_return rows(result);
}

AdminAnswer show_stats(AdminBackend& backend) {
  const auto stats = backend.stats();
  ResultSet result({{"clients_accepted", oid::int8},
                    {"clients_refused", oid::int8},
                    {"clients_now", oid::int8},
                    {"statements_rewritten", oid::int8},
                    {"bytes_from_clients", oid::int8},
                    {"bytes_from_server", oid::int8},
                    {"reloads_ok", oid::int8},
                    {"reloads_failed", oid::int8},
                    {"uptime_seconds", oid::float8}});
  result.add_row({std::to_string(stats.clients_accepted), std::to_string(stats.clients_refused),
                  std::to_string(stats.clients_now), std::to_string(stats.statements_rewritten),
                  std::to_string(stats.bytes_from_clients), std::to_string(stats.bytes_from_server),
                  std::to_string(stats.reloads_ok), std::to_string(stats.reloads_failed),
                  protocol::float8_text(stats.uptime_seconds)});
  return rows(result);
}

AdminAnswer show_config(AdminBackend& backend) {
  const auto config = backend.configuration();
  ResultSet result({{"key", oid::text}, {"value", oid::text}});
  const auto add = [&](std::string key, std::string value) {
    result.add_row({std::move(key), std::move(value)});
  };
  std::string admins;
  for (const auto& user : config->admin.users) admins += (admins.empty() ? "" : ",") + user;
  add("config_file", backend.config_path());
  add("instance", config->instance);
  add("listen", config::endpoint_text(config->listen));
  add("upstream", config::endpoint_text(config->upstream));
  if (config->upstream.several())
    add("upstream.target_session_attrs",
        std::string(config::to_string(config->upstream.target_session_attrs)));
  add("control.user", config->control.user);
  // Passwords are never shown, only whether one is set.
  add("control.password", config->control.password ? "(set)" : "(not set)");
  add("metrics", config->metrics ? config::endpoint_text(*config->metrics) : "off");
  add("admin.users", admins);
  add("admin.auth_database", config->admin.auth_database);
  add("ddl_seeds", protocol::bool_text(config->ddl_seeds));
  add("client_tls.sslmode", std::string(config::to_string(config->client_tls.sslmode)));
  add("client_tls.cert_file", config->client_tls.cert_file);
  add("server_tls.sslmode", std::string(config::to_string(config->server_tls.sslmode)));
  add("auth.mode", std::string(config::to_string(config->auth.mode)));
  add("auth.user", config->auth.user);
  add("auth.file", config->auth.file);
  add("seeds", std::to_string(config->seeds.size()));
  add("limits.max_message_bytes", std::to_string(config->limits.max_message_bytes));
  add("limits.max_clients", std::to_string(config->limits.max_clients));
  add("limits.startup_timeout_seconds",
      protocol::float8_text(config->limits.startup_timeout_seconds));
  add("limits.connect_timeout_seconds",
      protocol::float8_text(config->limits.connect_timeout_seconds));
  add("limits.max_authenticating", std::to_string(config->limits.max_authenticating));
  add("limits.max_authenticating_per_address",
      std::to_string(config->limits.max_authenticating_per_address));
  add("runtime.threads", std::to_string(config->runtime.threads));
  add("runtime.shutdown_grace_seconds",
      protocol::float8_text(config->runtime.shutdown_grace_seconds));
  add("log.level", std::string(config::to_string(config->log.level)));
  add("log.format", config->log.format == config::LogFormat::json ? "json" : "text");
  add("reload.watch_file", protocol::bool_text(config->reload.watch_file));
  return rows(result);
}

asio::awaitable<AdminAnswer> kill(const AdminCommand& command, AdminBackend& backend) {
  if (command.target == "seedproxy")
    co_return AdminAnswer{
        error_bytes({sqlstate::object_not_in_prerequisite_state,
                     "KILL cannot end the admin console's own database \"seedproxy\"",
                     {}}),
        true};
  const auto ended = co_await backend.kill_database(command.target);
  auto bytes = protocol::notice_response(
      "released database \"" + command.target + "\": " + std::to_string(ended) +
      " session(s) ended; this proxy holds no connection to it until a client connects to it "
      "again");
  const auto complete = protocol::command_complete("KILL");
  bytes.insert(bytes.end(), complete.begin(), complete.end());
  co_return AdminAnswer{std::move(bytes), false};
}

}  // namespace

asio::awaitable<AdminAnswer> answer(const AdminCommand& command, AdminBackend& backend) {
  switch (command.verb) {
    case AdminVerb::show_seeds:
      co_return show_seeds(backend);
    case AdminVerb::show_materializations:
      co_return show_materializations(backend);
    case AdminVerb::show_clients:
      co_return co_await show_clients(backend);
    case AdminVerb::show_pools:
      co_return co_await show_pools(backend);
    case AdminVerb::show_stats:
      co_return show_stats(backend);
    case AdminVerb::show_config:
      co_return show_config(backend);
    case AdminVerb::reload: {
      const auto refusal = co_await backend.reload();
      if (refusal)
        co_return AdminAnswer{
            error_bytes({config_file_error, "configuration reload refused: " + *refusal,
                         "The previous configuration stays in force."}),
            true};
      co_return AdminAnswer{protocol::command_complete("RELOAD"), false};
    }
    case AdminVerb::pause:
    case AdminVerb::resume:
    case AdminVerb::materialize:
    case AdminVerb::rollback:
      co_return co_await engine_command(command, backend);
    case AdminVerb::kill:
      co_return co_await kill(command, backend);
  }
  co_return AdminAnswer{error_bytes({syntax_error, "unknown admin command", {}}), true};
}

}  // namespace seedproxy::proxy
