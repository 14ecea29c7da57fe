// Listening, distributing clients over I/O threads, signals, hot reload, the admin console's
// view of the proxy (AdminBackend), and the graceful shutdown sequence.
#include "proxy/server/server.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <exception>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/log.hpp"
#include "common/log_limiter.hpp"
#include "common/sqlstate.hpp"
#include "proxy/admin/admin_backend.hpp"
#include "proxy/credentials/credential_store.hpp"
#include "proxy/io/socket_handoff.hpp"
#include "proxy/observe/latency_observer.hpp"
#include "proxy/observe/metrics_endpoint.hpp"
#include "proxy/server/config_reload.hpp"
#include "proxy/server/refusal.hpp"
#include "proxy/session/end_watch.hpp"
#include "proxy/session/session.hpp"
#include "proxy/tls/tls_contexts.hpp"
#include "proxy/wire/messages.hpp"
#include "seedproxy_version.hpp"
#include "seeds/control/control_connection.hpp"
#include "seeds/control/primary_locator.hpp"
#include "seeds/materialize/latency_history.hpp"
#include "seeds/materialize/materialization_engine.hpp"
#include "seeds/reads/read_flusher.hpp"
#include "seeds/reads/read_tally.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// One event loop per thread; a session lives and dies on the thread that serves it.
// Member order matters: the session list, which owns the sessions, frees those still there
// before the context their sockets and timers belong to is destroyed.
//
// The context runs without the reactor's per-descriptor lock
// (BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO; about 250 instructions per relayed transaction,
// docs/benchmarks.md). That is safe only because no socket, stream or timer of a session is touched
// from another thread: accepted sockets reach their thread through SocketHandoff, everything else
// posts or co_spawns onto this context. The full argument, and what must stay true, is in
// docs/architecture.md, "Threads".
struct Worker {
  asio::io_context context{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
  asio::executor_work_guard<asio::io_context::executor_type> guard{context.get_executor()};
  SessionList sessions;
  std::thread thread;
};

std::string endpoint_name(const config::Endpoint& endpoint) {
  return config::endpoint_text(endpoint);
}

// Every upstream host resolved once, in the configuration's order; one that does not resolve
// stops the proxy.
std::vector<UpstreamHost> resolve_upstream(const config::Upstream& upstream,
                                           asio::io_context& context) {
  std::vector<UpstreamHost> out;
  tcp::resolver resolver(context);
  for (const auto& host : upstream.hosts) {
    error_code ec;
    const auto found =
        resolver.resolve(host.host, std::to_string(host.port), tcp::resolver::numeric_service, ec);
    if (ec || found.empty())
      throw std::runtime_error("cannot resolve upstream host \"" + host.host +
                               "\": " + ec.message());
    UpstreamHost resolved{endpoint_name(host), host.host, {}};
    for (const auto& entry : found) resolved.endpoints.push_back(entry.endpoint());
    out.push_back(std::move(resolved));
  }
  return out;
}

// Everything a reload replaces, published as one immutable snapshot: the accept loop and new
// sessions read it without locks.
struct Generation {
  config::Config config;
  std::shared_ptr<const SessionSettings> session;
};

// What a configuration names on disk, loaded before it goes into force: TLS contexts for both
// legs and auth.file. Throws (TlsLoadError, std::runtime_error) with the file and the reason.
struct LoadedFiles {
  std::shared_ptr<const ClientTlsContext> client_tls;
  std::shared_ptr<const UpstreamTlsContext> server_tls;
  std::shared_ptr<const LoadedUserlist> userlist;
};

asio::awaitable<std::vector<ClientInfo>> describe_sessions(const SessionList& list) {
  std::vector<ClientInfo> out;
  for (const Session* session : list.sessions) out.push_back(session->info());
  co_return out;
}

// What `describe` says of every I/O thread's list, each read on its own thread; the caller
// resumes on its own executor after each.
template <class T>
asio::awaitable<std::vector<T>> gather(
    const std::vector<std::unique_ptr<Worker>>& workers,
    asio::awaitable<std::vector<T>> (*describe)(const SessionList&)) {
  std::vector<T> out;
  for (const auto& worker : workers) {
    auto part =
        co_await asio::co_spawn(worker->context, describe(worker->sessions), asio::use_awaitable);
    out.insert(out.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }
  co_return out;
}

asio::awaitable<std::vector<ParkedServerInfo>> describe_parked(const SessionList& list) {
  std::vector<ParkedServerInfo> out;
  if (list.pool)
    for (auto& p : list.pool->describe())
      out.push_back(
          {std::move(p.user), std::move(p.database), p.backend_pid, p.parked_seconds, p.tls});
  co_return out;
}

// Admin KILL: ends the sessions of one I/O thread to `database`, and lets go of its parked
// backends; how many sessions.
asio::awaitable<std::uint64_t> end_sessions(SessionList& list, std::string database) {
  if (list.pool) list.pool->drop_database(database);
  std::uint64_t ended = 0;
  for (Session* session : list.sessions)
    if (session->database() == database) {
      session->terminate("admin KILL " + database,
                         "terminating connection due to administrator command (seedproxy KILL)");
      ++ended;
    }
  co_return ended;
}

}  // namespace

struct Server::State final : AdminBackend {
  State(config::Config cfg, std::filesystem::path path)
      : config(std::move(cfg)), config_file(std::move(path)) {
    const auto threads = std::max<std::uint32_t>(1, config.runtime.threads);
    for (std::uint32_t i = 0; i < threads; ++i) {
      workers.push_back(std::make_unique<Worker>());
      workers.back()->sessions.on_end = [this] {
        observer().client_closed();
        session_ended();
      };
    }
  }
  ~State() override {
    // Its last completions are posted to the workers' contexts, which must still exist.
    if (reloader) reloader->stop();
    // The HTTP thread reads the registry and the generation: it stops before they go.
    if (metrics) metrics->stop();
  }

  asio::io_context& main_context() { return workers.front()->context; }
  // Where sessions and the accept loop report events: the clients' round trips go to the
  // engine's latency guard, everything to the metrics (nothing without `metrics`).
  Observer& observer() { return *latency_observer; }
  void make_metrics();

  void start_listening();
  [[nodiscard]] std::shared_ptr<const Generation> make_generation(const config::Config& next,
                                                                  const LoadedFiles& files);
  [[nodiscard]] LoadedFiles load_files(const config::Config& next);
  [[nodiscard]] std::shared_ptr<const Generation> generation() const {
    return current.load(std::memory_order_acquire);
  }

  // AdminBackend
  std::vector<seeds::SeedStatus> seed_statuses() override { return snapshots->seed_statuses(); }
  asio::awaitable<std::vector<ClientInfo>> clients() override;
  ProxyStats stats() override;
  std::shared_ptr<const config::Config> config_in_force() const {
    const auto gen = generation();
    return {gen, &gen->config};
  }
  std::shared_ptr<const config::Config> configuration() override { return config_in_force(); }
  std::string config_path() override { return config_file.string(); }
  asio::awaitable<std::optional<std::string>> reload() override {
    co_return co_await reloader->reload("admin RELOAD");
  }
  std::vector<seeds::MaterializationStatus> materializations() override {
    return engine->statuses();
  }
  asio::awaitable<void> engine_job(std::shared_ptr<seeds::EngineJob> job) override {
    engine->submit(job);
    // The engine answers after one registry write; a database that does not answer is bounded.
    // The co_await stands alone: inside the if, with the temporaries of the condition, the
    // GCC 12 build crashed on resumption (seen in e2e_rollback).
    const bool answered = co_await job->done.wait(std::chrono::seconds(30));
    if (!answered) {
      job->sqlstate = sqlstate::query_canceled;
      job->message = "the materialization engine did not answer within 30 s";
    }
  }
  asio::awaitable<std::uint64_t> kill_database(std::string database) override;
  asio::awaitable<std::vector<ParkedServerInfo>> parked_servers() override;
  void admin_refused() noexcept override { refused.fetch_add(1, std::memory_order_relaxed); }

  asio::awaitable<void> accept_loop();
  void accept_loop_ended(std::exception_ptr failure);
  asio::awaitable<void> watch_signals();
  asio::awaitable<void> sample_latency();
  void spawn_session(Worker& worker, SocketHandoff client,
                     std::shared_ptr<const SessionSettings> session_settings,
                     LoginGate::Ticket login);
  // Past limits.max_clients or the login gate's limits: the reason, or empty when admitted.
  [[nodiscard]] std::string admission_refusal(const asio::ip::address& address,
                                              const config::Limits& limits,
                                              LoginGate::Ticket& login);
  void session_ended();
  void begin_shutdown(std::string_view why);
  void stop_when_idle();
  void terminate_sessions(std::string reason);
  void stop_all();

  config::Config config;  // as started; restart-only settings are read from here
  std::filesystem::path config_file;
  // Before the workers: their sessions report to its observer until they are destroyed.
  seeds::ApplicationLatency latency;
  seeds::LatencyHistory latency_history{latency};  // sampled every second by sample_latency()
  std::unique_ptr<MetricsEndpoint> metrics;
  std::unique_ptr<LatencyObserver> latency_observer;
  std::unique_ptr<seeds::SnapshotRegistry> snapshots;
  // Materializes hot seeds; stopped before the snapshots it reads go.
  std::unique_ptr<seeds::MaterializationEngine> engine;
  // Sessions count into the tally until the workers go; the flusher is stopped (final flush)
  // once they have, and in any case before the tally and the snapshots.
  std::unique_ptr<seeds::ReadTally> reads;
  std::unique_ptr<seeds::ReadFlusher> read_flusher;
  std::vector<UpstreamHost> upstream;  // resolved once
  // Several upstream hosts with target_session_attrs read-write: which is the primary.
  std::unique_ptr<seeds::PrimaryLocator> primary;
  // auth.mode = proxy: where clients' secrets come from (auth.file, auth.query).
  std::unique_ptr<CredentialStore> credentials;
  LoadedFiles pending;  // reload thread: loaded by the reloader's prepare step, used by apply
  std::atomic<std::shared_ptr<const Generation>> current;
  // Before the workers: their sessions give their tickets back when they are destroyed.
  LoginGate login_gate;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::steady_timer> grace_timer;
  std::optional<asio::signal_set> signals;
  std::atomic<std::uint64_t> active{0};
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> refused{0};
  // Lines a stranger can repeat at will: 10 per 10 s each, the rest counted.
  log::RepeatLimiter refusal_log, accept_failure_log;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  std::size_t next_worker = 0;
  bool shutting_down = false;  // main thread only
  bool accepting = true;       // main thread only: until accept_loop() has returned
  bool stopped = false;        // main thread only
  // Last: destroyed (and so stopped) before the workers and the registry it uses.
  std::unique_ptr<ConfigReloader> reloader;
};

LoadedFiles Server::State::load_files(const config::Config& next) {
  LoadedFiles files;
  files.client_tls = load_client_tls(next.client_tls);
  files.server_tls = load_upstream_tls(next.server_tls);
  if (credentials) files.userlist = credentials->prepare_file(next.auth);
  return files;
}

std::shared_ptr<const Generation> Server::State::make_generation(const config::Config& next,
                                                                 const LoadedFiles& files) {
  auto generation = std::make_shared<Generation>();
  generation->config = next;
  auto session_settings = std::make_shared<SessionSettings>();
  session_settings->upstream = upstream;
  session_settings->primary = primary.get();
  session_settings->max_message_length = static_cast<std::uint32_t>(next.limits.max_message_bytes);
  session_settings->startup_timeout_seconds = next.limits.startup_timeout_seconds;
  session_settings->connect_timeout_seconds = next.limits.connect_timeout_seconds;
  session_settings->snapshots = snapshots.get();
  session_settings->reads = reads.get();
  session_settings->admin_users = next.admin.users;
  session_settings->admin_auth_database = next.admin.auth_database;
  session_settings->admin = this;
  session_settings->ddl_seeds = next.ddl_seeds;
  session_settings->observer = &observer();
  session_settings->client_tls = files.client_tls;
  session_settings->server_tls = files.server_tls;
  session_settings->auth_mode = next.auth.mode;
  session_settings->secrets = credentials.get();
  session_settings->trust_users = next.auth.trust_users;
  session_settings->server_pool = next.server_pool;
  if (credentials) credentials->install_file(files.userlist);
  generation->session = std::move(session_settings);
  return generation;
}

asio::awaitable<std::vector<ClientInfo>> Server::State::clients() {
  co_return co_await gather(workers, &describe_sessions);
}

asio::awaitable<std::vector<ParkedServerInfo>> Server::State::parked_servers() {
  co_return co_await gather(workers, &describe_parked);
}

asio::awaitable<std::uint64_t> Server::State::kill_database(std::string database) {
  std::uint64_t ended = 0;
  for (auto& worker : workers)
    ended += co_await asio::co_spawn(worker->context, end_sessions(worker->sessions, database),
                                     asio::use_awaitable);
  // The registry's connection first: no worker is made again for a released database.
  std::vector<std::shared_ptr<Completion>> done(3);
  for (auto& d : done) d = std::make_shared<Completion>();
  snapshots->release(database, done[0]);
  engine->release(database, done[1]);
  read_flusher->release(database, done[2]);
  // A backfill stops within a second; a database that does not answer is bounded.
  for (const auto& d : done) {
    const bool closed = co_await d->wait(std::chrono::seconds(30));
    if (!closed) log::warning("admin", "KILL " + database + ": a connection did not close in 30 s");
  }
  log::info("admin", "KILL " + database + ": " + std::to_string(ended) +
                         " session(s) ended, the proxy's connections to it closed");
  co_return ended;
}

ProxyStats Server::State::stats() {
  ProxyStats out;
  out.clients_accepted = accepted.load(std::memory_order_relaxed);
  out.clients_refused = refused.load(std::memory_order_relaxed);
  out.clients_now = active.load(std::memory_order_relaxed);
  for (const auto& worker : workers) {
    const auto& counters = worker->sessions.counters;
    out.bytes_from_clients += counters.bytes_from_clients.get();
    out.bytes_from_server += counters.bytes_from_server.get();
    out.statements_rewritten += counters.statements_rewritten.get();
  }
  out.reloads_ok = reloader ? reloader->reloads_ok() : 0;
  out.reloads_failed = reloader ? reloader->reloads_failed() : 0;
  out.uptime_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return out;
}

void Server::State::start_listening() {
  upstream = resolve_upstream(config.upstream, main_context());
  // Always: seeds may arrive by reload or from another proxy sharing the registry.
  const seeds::ControlTarget target = seeds::control_target(config);
  if (config.upstream.several() &&
      config.upstream.target_session_attrs == config::TargetSessionAttrs::read_write) {
    primary = std::make_unique<seeds::PrimaryLocator>(target, config.admin.auth_database,
                                                      config.upstream.check_seconds);
    primary->start();
  }
  if (config.auth.mode == config::AuthMode::proxy) {
    credentials = std::make_unique<CredentialStore>(target, config.auth);
    credentials->start();
  }
  // Certificates, keys and auth.file: a file that cannot be used stops the proxy here.
  const LoadedFiles files = load_files(config);
  // Catalogs change only through DDL (which sessions report at once) or from outside the
  // proxy; the periodic refresh bounds how stale the latter can be.
  snapshots = std::make_unique<seeds::SnapshotRegistry>(
      target,
      seeds::FleetSettings{config.instance, endpoint_name(config.listen),
                           config.registry.lease_seconds},
      config.registry.refresh_seconds, config.validation);
  snapshots->start(config.seeds);
  engine = std::make_unique<seeds::MaterializationEngine>(target, config.instance, *snapshots,
                                                          config.materialization);
  engine->watch_latency(&latency_history);
  engine->start();
  reads = std::make_unique<seeds::ReadTally>();
  read_flusher = std::make_unique<seeds::ReadFlusher>(*reads, target, config.instance,
                                                      config.materialization.reads_flush_seconds);
  if (config.metrics) make_metrics();
  latency_observer =
      std::make_unique<LatencyObserver>(latency, metrics ? metrics->observer() : null_observer());
  current.store(make_generation(config, files), std::memory_order_release);
  if (metrics) {
    metrics->start();
    log::info("server", "metrics, health and status page on http://" + config.metrics->host + ":" +
                            std::to_string(metrics->port()) + "/");
  }
  reloader = std::make_unique<ConfigReloader>(
      config_file, config, *snapshots,
      [this](const config::Config& next) -> std::optional<std::string> {
        try {
          pending = load_files(next);
        } catch (const std::exception& e) {
          return std::string(e.what());  // the old certificates and keys stay in force
        }
        return std::nullopt;
      },
      [this](const config::Config& next) {
        apply_log_settings(next.log);
        current.store(make_generation(next, pending), std::memory_order_release);
        pending = {};
      });

  error_code ec;
  tcp::resolver resolver(main_context());
  const auto listen = resolver.resolve(config.listen.host, std::to_string(config.listen.port),
                                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || listen.empty())
    throw std::runtime_error("cannot resolve listen.host \"" + config.listen.host +
                             "\": " + ec.message());
  const tcp::endpoint endpoint = listen.begin()->endpoint();
  acceptor.emplace(main_context());
  const auto fail = [&](const char* what) {
    throw std::runtime_error(std::string("cannot listen on ") + endpoint_name(config.listen) +
                             ": " + what + ": " + ec.message());
  };
  acceptor->open(endpoint.protocol(), ec);
  if (ec) fail("open");
  acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) fail("SO_REUSEADDR");
  acceptor->bind(endpoint, ec);
  if (ec) fail("bind");
  acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fail("listen");
}

void Server::State::make_metrics() {
  StatusSources sources;
  sources.seeds = [this] { return snapshots->seed_statuses(); };
  sources.materializations = [this] {
    // The metrics follow running work only; SHOW MATERIALIZATIONS keeps the finished ones.
    auto statuses = engine->statuses();
    std::erase_if(statuses, [](const seeds::MaterializationStatus& m) {
      return m.at_step(seeds::MaterializationStep::materialized) ||
             m.at_step(seeds::MaterializationStep::rolled_back);
    });
    return statuses;
  };
  // From the configuration in force, so a reload's new thresholds show at once.
  sources.thresholds = [this] { return thresholds_from_config(generation()->config.seeds); };
  // The upstream probe and the registries of the configuration's databases (and of databases
  // whose registry was read before); never a database a client merely named.
  sources.health = [this]() -> HealthResult {
    std::vector<std::string> configured;
    for (const auto& seed : generation()->config.seeds) configured.push_back(seed.database);
    if (auto failure = snapshots->read_failure(configured); !failure.empty())
      return {false, "cannot read the seed registry: " + failure};
    return {};
  };
  metrics = std::make_unique<MetricsEndpoint>(*config.metrics, config.upstream, std::move(sources),
                                              config.instance);
}

// Ends once shutdown has begun: begin_shutdown() cancels the pending accept (a back-off pause,
// which nothing cancels, delays the end by at most 100 ms); accept_loop_ended() follows.
asio::awaitable<void> Server::State::accept_loop() {
  while (!shutting_down) {
    Worker& worker = *workers[next_worker++ % workers.size()];
    // Accepted on this thread's own context: its reactor is this thread's (see Worker).
    // Accepted as a ContextSocket (context_socket.hpp): given the context, async_accept makes
    // the socket bound to its own executor.
    auto [ec, socket] = co_await acceptor->async_accept(main_context(), use_tuple);
    if (shutting_down) co_return;
    if (ec) {
      log::limited(accept_failure_log, log::Level::warning, "server",
                   "accept failed: " + ec.message());
      if (ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space) {
        // Out of file descriptors: back off briefly instead of spinning on the same error.
        asio::steady_timer pause(main_context(), std::chrono::milliseconds(100));
        co_await pause.async_wait(use_tuple);
      }
      continue;
    }
    const auto in_force = generation();
    LoginGate::Ticket login;
    error_code peer_ec;
    const auto peer = socket.remote_endpoint(peer_ec).address();  // unspecified if gone already
    if (auto message = admission_refusal(peer, in_force->config.limits, login); !message.empty()) {
      refused.fetch_add(1, std::memory_order_relaxed);
      observer().client_refused();
      // On the next thread too, whose reactor registers the socket there (see Worker).
      auto refuse = [](SocketHandoff client, std::string text) -> asio::awaitable<void> {
        co_await refuse_client(client.take(), sqlstate::too_many_connections, std::move(text), 2.0);
      };
      asio::co_spawn(worker.context,
                     refuse(SocketHandoff(std::move(socket), worker.context), std::move(message)),
                     asio::detached);
      continue;
    }
    spawn_session(worker, SocketHandoff(std::move(socket), worker.context), in_force->session,
                  std::move(login));
  }
}

std::string Server::State::admission_refusal(const asio::ip::address& address,
                                             const config::Limits& limits,
                                             LoginGate::Ticket& login) {
  if (active.load() >= limits.max_clients) {
    log::limited(refusal_log, log::Level::warning, "server",
                 "refused a client: limits.max_clients (" + std::to_string(limits.max_clients) +
                     ") reached");
    return "sorry, too many clients already";
  }
  auto entry =
      login_gate.enter(address, {limits.max_authenticating, limits.max_authenticating_per_address});
  switch (entry.refusal) {
    case LoginGate::Refusal::none:
      login = std::move(entry.ticket);
      return {};
    case LoginGate::Refusal::total:
      log::limited(refusal_log, log::Level::warning, "server",
                   "refused a client from " + address.to_string() +
                       ": limits.max_authenticating (" + std::to_string(limits.max_authenticating) +
                       ") sessions are still logging in");
      return "sorry, too many clients are still logging in (seedproxy limits.max_authenticating "
             "= " +
             std::to_string(limits.max_authenticating) + ")";
    case LoginGate::Refusal::per_address:
      log::limited(refusal_log, log::Level::warning, "server",
                   "refused a client from " + address.to_string() +
                       ": limits.max_authenticating_per_address (" +
                       std::to_string(limits.max_authenticating_per_address) +
                       ") sessions from that address are still logging in");
      return "sorry, too many clients from " + address.to_string() +
             " are still logging in (seedproxy limits.max_authenticating_per_address = " +
             std::to_string(limits.max_authenticating_per_address) + ")";
  }
  return {};
}

void Server::State::spawn_session(Worker& worker, SocketHandoff client,
                                  std::shared_ptr<const SessionSettings> session_settings,
                                  LoginGate::Ticket login) {
  active.fetch_add(1);
  accepted.fetch_add(1, std::memory_order_relaxed);
  observer().client_accepted();
  const auto id = next_id.fetch_add(1);
  // Started on the worker's thread, where the socket is registered; from then on the worker's
  // session list owns the session, which tells it (on_end, session_ended) when it is over.
  asio::post(worker.context, [&list = worker.sessions, id, handoff = std::move(client),
                              settings = std::move(session_settings),
                              ticket = std::move(login)]() mutable {
    try {
      Session::start(handoff.take(), std::move(settings), list, id, std::move(ticket));
    } catch (const std::exception& e) {
      log::error("session", "session " + std::to_string(id) + " could not start: " + e.what());
      list.on_end();  // counted as a session that ended
    }
  });
}

// Runs on the main context once the accept loop has returned, normally or by an exception.
void Server::State::accept_loop_ended(std::exception_ptr failure) {
  accepting = false;
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      log::error("server", std::string("accept loop ended by an internal error: ") + e.what());
    } catch (...) {
      log::error("server", "accept loop ended by an internal error");
    }
  }
  // Closed only now that no accept is in flight: in the io_uring build of Boost 1.81 closing
  // frees the acceptor's operation queues even with an accept still in the kernel.
  error_code ignored;
  acceptor->close(ignored);
  log::info("server", "listening socket closed");
  stop_when_idle();
}

void Server::State::session_ended() {
  if (active.fetch_sub(1) == 1)
    asio::post(main_context(), [this] {
      if (shutting_down && active.load() == 0) {
        log::info("server", "all sessions closed");
        stop_when_idle();
      }
    });
}

asio::awaitable<void> Server::State::watch_signals() {
  for (;;) {
    auto [ec, number] = co_await signals->async_wait(use_tuple);
    if (ec || stopped) co_return;
    if (number == SIGHUP) {
      if (shutting_down) continue;
      log::info("server", "SIGHUP received: reloading " + config_file.string());
      reloader->request("SIGHUP");
      continue;
    }
    const std::string name = number == SIGINT ? "SIGINT" : "SIGTERM";
    if (!shutting_down) {
      begin_shutdown(name);
    } else {
      log::info("server", name + " received again: closing every session now");
      terminate_sessions("seedproxy shutdown (second signal)");
    }
  }
}

// Once a second, the clients' latency histogram as it stands, so the engine can pace a backfill
// on the latency the application had before it began.
asio::awaitable<void> Server::State::sample_latency() {
  asio::steady_timer tick(main_context());
  for (;;) {
    latency_history.sample();
    tick.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await tick.async_wait(use_tuple);
    if (ec || stopped) co_return;
  }
}

void Server::State::begin_shutdown(std::string_view why) {
  shutting_down = true;
  // The accept loop sees its operation_aborted and ends, accept_loop_ended() closes the
  // acceptor; the contexts stop only after that (stop_when_idle).
  error_code ignored;
  acceptor->cancel(ignored);
  const auto sessions = active.load();
  if (sessions == 0) {
    log::info("server", std::string(why) + " received: no sessions open, stopping");
    stop_when_idle();
    return;
  }
  const double grace = generation()->config.runtime.shutdown_grace_seconds;
  log::info("server", std::string(why) + " received: no longer accepting; waiting up to " +
                          log::seconds_text(grace) + " for " + std::to_string(sessions) +
                          " session(s) to finish");
  grace_timer.emplace(main_context());
  grace_timer->expires_after(seconds(grace));
  grace_timer->async_wait([this](error_code ec) {
    if (ec || stopped) return;
    terminate_sessions("seedproxy shutdown: grace period over");
  });
}

void Server::State::terminate_sessions(std::string reason) {
  for (auto& worker : workers)
    asio::post(worker->context, [&list = worker->sessions, reason] {
      // terminate() only cancels; sessions leave the list later, from their own frames.
      for (Session* session : list.sessions) session->terminate(reason);
    });
  // Sessions stuck writing to a client that never reads get a bounded time to go.
  auto hard_stop = std::make_shared<asio::steady_timer>(main_context(), std::chrono::seconds(5));
  hard_stop->async_wait([this, hard_stop](error_code ec) {
    if (ec || stopped) return;
    log::warning("server", std::to_string(active.load()) +
                               " session(s) did not close in time; stopping anyway");
    stop_all();
  });
}

// The graceful end: the contexts stop once the accept loop has returned and every session has
// ended, so no accept and no session's socket operation is in flight when they do (timers and the
// signal wait are left, which their services destroy safely). Stopping them with the accept in
// flight left it to the io_context's destructor, which in the io_uring build destroyed the
// accepted socket after the socket service (a heap-use-after-free under ASan, docs/benchmarks.md,
// "The io_uring build loses sessions").
void Server::State::stop_when_idle() {
  if (shutting_down && !accepting && active.load() == 0) stop_all();
}

void Server::State::stop_all() {
  if (stopped) return;
  stopped = true;
  if (grace_timer) grace_timer->cancel();
  for (auto& worker : workers) {
    worker->guard.reset();
    worker->context.stop();
  }
}

Server::Server(config::Config config, std::filesystem::path config_path)
    : state_(std::make_unique<State>(std::move(config), std::move(config_path))) {}

Server::~Server() = default;

int Server::run() {
  std::signal(SIGPIPE, SIG_IGN);
  auto& state = *state_;
  // Handlers first: a signal that arrives once the port is open must start a graceful shutdown,
  // not kill the process with the default action. Asio queues it until the loop runs.
  state.signals.emplace(state.main_context(), SIGINT, SIGTERM, SIGHUP);
  state.start_listening();
  asio::co_spawn(state.main_context(), state.accept_loop(),
                 [&state](std::exception_ptr failure) { state.accept_loop_ended(failure); });
  asio::co_spawn(state.main_context(), state.watch_signals(), asio::detached);
  asio::co_spawn(state.main_context(), state.sample_latency(), asio::detached);
  for (auto& worker : state.workers)
    asio::co_spawn(worker->context, watch_session_ends(worker->sessions), asio::detached);
  state.reloader->start();
  log::info("server", std::string("seedproxy ") + version_string + " listening on " +
                          endpoint_name(state.config.listen) + ", upstream " +
                          config::endpoint_text(state.config.upstream) + ", " +
                          std::to_string(state.workers.size()) + " I/O thread(s)");
  for (std::size_t i = 1; i < state.workers.size(); ++i) {
    Worker& worker = *state.workers[i];
    worker.thread = std::thread([&worker] { worker.context.run(); });
  }
  state.main_context().run();
  for (std::size_t i = 1; i < state.workers.size(); ++i) state.workers[i]->thread.join();
  // A backfill in flight stops within a second; its watermark is in the registry.
  state.engine->stop();
  if (state.credentials) state.credentials->stop();
  // Every session has ended: the last reads they counted are written now.
  state.read_flusher->stop();
  state.reloader->stop();
  if (state.metrics) state.metrics->stop();
  log::info("server", "stopped");
  return 0;
}

}  // namespace seedproxy::proxy
