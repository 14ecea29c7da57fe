// One client connection in session mode: startup handshake, its own upstream connection, and
// the two relay pumps; ends with a logged reason and, when the client can still hear, a SQLSTATE.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/admin/admin_backend.hpp"
#include "proxy/credentials/secret_source.hpp"
#include "proxy/io/buffer_pool.hpp"
#include "proxy/io/stream.hpp"
#include "proxy/observe/observer.hpp"
#include "proxy/observe/statement_timer.hpp"
#include "proxy/observe/traffic_counters.hpp"
#include "proxy/pool/server_pool.hpp"
#include "proxy/session/client_auth.hpp"
#include "proxy/session/ddl_seeds.hpp"
#include "proxy/session/hot_standby_check.hpp"
#include "proxy/session/login_gate.hpp"
#include "proxy/session/statement_rewriting.hpp"
#include "proxy/tls/tls_contexts.hpp"
#include "proxy/wire/messages.hpp"
#include "proxy/wire/relay_scanner.hpp"
#include "seeds/control/primary_locator.hpp"
#include "seeds/registry/snapshot_source.hpp"

namespace seedproxy::proxy {

using tcp = boost::asio::ip::tcp;

// What every session needs to know, fixed when the session starts.
// Configuration durations are fractional seconds.
[[nodiscard]] inline std::chrono::steady_clock::duration seconds(double value) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(value));
}

// One of upstream.hosts, resolved once.
struct UpstreamHost {
  std::string name;  // "host:port", for messages
  std::string host;  // as configured: SNI and the name server_tls verify-full checks
  std::vector<tcp::endpoint> endpoints;
};

struct SessionSettings {
  // Tried in this order (libpq's multi-host order), starting with `primary`'s choice when set.
  std::vector<UpstreamHost> upstream;
  // Several hosts with target_session_attrs read-write: which one is the primary now.
  seeds::PrimaryLocator* primary = nullptr;
  std::uint32_t max_message_length = protocol::default_max_message_length;
  double startup_timeout_seconds = 15.0;
  double connect_timeout_seconds = 5.0;
  // Per-database catalog and seed snapshots (the server always sets it; seeds may arrive at any
  // time); null: no statement is rewritten.
  seeds::SnapshotSource* snapshots = nullptr;
  std::size_t max_rewrite_bytes = 1u << 20;
  // Admin console: who may use it, where PostgreSQL authenticates them, what answers it.
  std::vector<std::string> admin_users;
  std::string admin_auth_database = "postgres";
  AdminBackend* admin = nullptr;
  // ddl_seeds: ALTER TABLE ... GENERATED ALWAYS AS (...) STORED becomes a seed (ddl_seeds.hpp).
  bool ddl_seeds = false;
  // Where sessions tally executed reads of seeds for the registry; null: not tallied.
  seeds::ReadTally* reads = nullptr;
  // Where sessions report events for metrics; the null observer when metrics are off.
  Observer* observer = &null_observer();
  // TLS on each leg, as loaded from client_tls and server_tls (never null).
  std::shared_ptr<const ClientTlsContext> client_tls = std::make_shared<ClientTlsContext>();
  std::shared_ptr<const UpstreamTlsContext> server_tls = std::make_shared<UpstreamTlsContext>();
  // auth.mode: relay, or the proxy checks passwords against `secrets` itself.
  config::AuthMode auth_mode = config::AuthMode::relay;
  SecretSource* secrets = nullptr;  // set when auth_mode is proxy
  std::vector<std::string> trust_users;
  // server_pool: backends kept between clients (only with auth_mode proxy and one host).
  config::ServerPool server_pool;
};

class Session;

// The sessions living on one I/O thread, and their owner: a session frees itself when its
// connection is over, and the list frees those still there when it is destroyed, which must
// happen before their I/O context is (their sockets leave its reactor). Touched only from that
// thread (counters: written only from it).
struct SessionList {
  SessionList() = default;
  ~SessionList();
  SessionList(const SessionList&) = delete;
  SessionList& operator=(const SessionList&) = delete;

  std::list<Session*> sessions;
  TrafficCounters counters;
  // Backends kept for the next client (server_pool), made at the first one parked.
  std::unique_ptr<ServerPool> pool;
  // Called once for each session that ended by itself, after it is freed (not for those the
  // list's destructor frees).
  std::function<void()> on_end;
};

class Session {
 public:
  // Starts a session on `client`, from the socket's own thread; `list` owns it from then on.
  // `login` is the session's place among those logging in, given back once it has logged in.
  static void start(ContextSocket client, std::shared_ptr<const SessionSettings> settings,
                    SessionList& list, std::uint64_t id, LoginGate::Ticket login = {});
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Ends the session from outside (shutdown, admin KILL); the client hears `client_message`
  // (SQLSTATE 57P01). Runs on the session's thread.
  void terminate(
      std::string reason,
      std::string client_message = "terminating connection because seedproxy is shutting down");
  // The database the client asked for ("" before its startup packet). Session's thread.
  [[nodiscard]] const std::string& database() const noexcept { return database_; }

  [[nodiscard]] char transaction_status() const noexcept { return transaction_status_; }
  // For SHOW CLIENTS. Runs on the session's thread.
  [[nodiscard]] ClientInfo info() const;
  // The end watch (end_watch.hpp): a peer that closed right after ending its turn is seen. Runs
  // on the session's thread.
  void check_for_ends() noexcept;

 private:
  friend struct SessionList;  // frees the sessions still there when it goes
  Session(ContextSocket client, std::shared_ptr<const SessionSettings> settings, SessionList& list,
          std::uint64_t id, LoginGate::Ticket login);
  ~Session();

  struct Ending {
    std::string reason;            // for the log
    std::string_view client_code;  // SQLSTATE of a FATAL ErrorResponse; empty: none
    std::string client_message;
    std::string client_detail;
    Peer protocol_culprit = Peer::client;  // who broke the protocol, when client_code is 08P01
    bool refused_backend = false;          // standby_check_ refused the backend: run decides
    bool client_left = false;              // the client closed its connection (or terminated)
    void tell(std::string_view code, std::string message, std::string detail = {}) {
      client_code = code;
      client_message = std::move(message);
      client_detail = std::move(detail);
    }
  };

  // Startup (session_startup.cpp): SSLRequest, direct TLS, GSSENCRequest, CancelRequest and the
  // StartupMessage, which is kept in login_again_ (true) for the login that follows.
  boost::asio::awaitable<bool> read_startup(Ending& ending);
  // The client's TLS handshake (after 'S', or at once for direct TLS) under the startup deadline
  // (watch_login);
  // in auth.mode relay, the upstream connection is opened meanwhile (connect_early).
  boost::asio::awaitable<bool> start_client_tls(bool direct, Ending& ending);
  // The handshake alone: false, with the reason in `ending`, when the session must end.
  boost::asio::awaitable<bool> client_tls_handshake(bool direct, Ending& ending);
  // connect_upstream's first attempt, made while the client's TLS handshake runs: PostgreSQL
  // forks the backend on the TCP connection and starts it meanwhile, so the startup packet finds
  // it ready. The outcome waits in login_->early for connect_upstream.
  boost::asio::awaitable<void> connect_early();
  // PostgreSQL 17's direct TLS: a client whose first byte opens a TLS handshake gets one at once.
  // False when the session must end.
  boost::asio::awaitable<bool> accept_direct_tls(Ending& ending);
  // Whether the client's transport satisfies client_tls once its user is known.
  [[nodiscard]] bool client_transport_allowed(Ending& ending);
  // TCP, then TLS as server_tls says: the primary first, then the other hosts in order. After a
  // refused standby, the next host not tried yet.
  boost::asio::awaitable<bool> connect_upstream(Ending& ending);
  // The host a first attempt tries: the primary the locator last found, else the first listed.
  [[nodiscard]] std::size_t first_upstream_host() const;
  // One host under its own connect timeout; the cause of failure, empty on success. `reachable`
  // is set when TCP connected (so a TLS failure is not retried on another host).
  boost::asio::awaitable<std::string> connect_host(const UpstreamHost& host, bool& reachable);
  // auth.mode = proxy: the client's password checked here, then the upstream login with the key
  // it yielded. Returns the server's AuthenticationOk, not yet sent to the client.
  boost::asio::awaitable<std::optional<std::vector<std::byte>>> login_in_proxy(
      std::vector<std::byte> startup, Ending& ending);
  // Its two halves: the client's password checked here, giving the credential for upstream...
  boost::asio::awaitable<std::optional<UpstreamCredential>> authenticate_in_proxy(Ending& ending);
  // ...and the connection and login upstream with it, giving the server's AuthenticationOk.
  boost::asio::awaitable<std::optional<std::vector<std::byte>>> login_upstream_in_proxy(
      const std::vector<std::byte>& startup, UpstreamCredential credential, Ending& ending);
  // A client session (open, then session_upstream.cpp): login, relayed or in the proxy, and the
  // pumps; with a primary locator, a backend that turns out not to take writes is left for the
  // next host.
  // auth.mode proxy: the client's password checked, the credential kept in login_again_ for
  // every host tried; false when the session ends.
  boost::asio::awaitable<bool> authenticate_for_logins(Ending& ending);
  // The login on the next host: relayed (the client's startup packet goes up) or, with
  // login_again_.credential, the proxy's own. False when the session ends.
  boost::asio::awaitable<bool> start_login(Ending& ending);
  // The backend was refused by standby_check_: logged and counted, the locator told; true when
  // the session may try the next host unseen, false (the client told why) when it must end.
  boost::asio::awaitable<bool> leave_refused_backend(Ending& ending);
  [[nodiscard]] bool refused_while_starting_up(const std::vector<std::byte>& server_error,
                                               Ending& ending);
  // server_pool (server_reuse.cpp). Whether this session's backends may be kept for the next
  // client.
  [[nodiscard]] bool pooling() const noexcept;
  // A parked backend for this client's startup packet, made the session's: what the client hears
  // (AuthenticationOk and the backend's login messages), or nullopt when none is parked.
  std::optional<std::vector<std::byte>> reuse_server(const std::vector<std::byte>& startup);
  // After a fresh login's AuthenticationOk: the login's messages up to ReadyForQuery read here
  // and kept (login_again_), so a later client of the backend hears them again. Returns what
  // the client hears: `auth_ok` and those messages.
  boost::asio::awaitable<std::optional<std::vector<std::byte>>> read_login_messages(
      std::vector<std::byte> auth_ok, Ending& ending);
  // The login messages the proxy wrote to the client itself, seen as if relayed.
  void follow_login_messages(protocol::Bytes messages);
  // Why the backend cannot be kept as the session ends; nullptr when it can.
  [[nodiscard]] const char* reuse_refusal(const Ending& ending) const;
  // The client left its backend idle: reset and parked for the next client (the log line says
  // so), else left for finish() to close.
  boost::asio::awaitable<void> park_server(Ending& ending);
  // Runs server_pool.reset_query and a marker query after it; true when both succeeded, every
  // answer before them was read and the backend is idle.
  boost::asio::awaitable<bool> reset_server();
  // The server's messages read in bulk until `each(type, body)` returns true; false when the
  // connection fails, the deadline passes or something follows the last message.
  template <class Each>
  boost::asio::awaitable<bool> read_server_messages(Each each);
  // When `timer` passes, (this->*passed)() runs: one wait counted as a coroutine of the session,
  // so the session outlives it; cancelling or destroying the timer withdraws it. It bounds steps
  // that cannot race the timer cheaply (watch_login, reset_server's reads).
  void when_passed(boost::asio::steady_timer& timer, void (Session::*passed)());
  void cancel_server() { server_.cancel(); }
  // The session's coroutines, each started by spawn: open (the startup and the first login), and
  // after_relay each time the pumps have ended (the next host, or the end). While the pumps run,
  // none is left: an idle session is only its pumps' pending reads, which own nothing, and no
  // frame of the session's own stays allocated for its whole life.
  boost::asio::awaitable<void> open();
  boost::asio::awaitable<void> after_relay();
  // Logs in on the next host and starts the relay: true when the pumps run, false when the
  // session must end with `ending`.
  boost::asio::awaitable<bool> log_in_and_relay(Ending& ending);
  // The end: the client told why (unless a terminate() overrides it), the sockets closed, the
  // session logged.
  boost::asio::awaitable<void> end_session(Ending& ending);
  void spawn(boost::asio::awaitable<void> steps);
  // A coroutine of spawn's is over (with what it threw): the session is freed if nothing else of
  // it runs.
  void step_done(std::exception_ptr failure);
  // Frees the session once no coroutine of it runs and its pumps are over, then tells the list.
  void free_if_over();
  // The two pumps and the login deadline of one relayed session, and which of them ended it;
  // allocated while they run (pumps_). The last of them to end spawns after_relay.
  struct Pumps {
    std::unique_ptr<Ending> ending;  // why, from the first to end (allocated then)
    std::exception_ptr failure;      // thrown by the pump that ended first
    int running = 0;                 // pumps and the armed login deadline not yet ended
    // Reaches the client pump's coroutine (the catalog, a DDL seed's verdict, a write to the
    // server) while it runs; its reads are cancelled through the socket.
    boost::asio::cancellation_signal cancel_client_pump;
  };
  // Starts the two pumps, and the login deadline before authentication.
  void start_relay();
  // Nothing relays any more: why the first of them ended; rethrows what a pump threw.
  Ending relay_over();
  // One of the pumps (`which`: 0 the client's, 1 the server's, -1 the login deadline) ended; the
  // first to end ends the session (its ending is kept) and cancels the others.
  void pump_ended(int which, Ending ending, std::exception_ptr failure);
  // A pump or the login deadline is over: nothing of it is pending any more. The last one
  // spawns after_relay (from a handler of its own).
  void one_less();
  // No memory for the coroutine that ends the session: it ends here, the client told nothing.
  void end_without_memory();
  [[nodiscard]] Ending login_timeout() const;
  // The steps the proxy runs itself before the relay (startup packet, TLS handshake, its own
  // authentication) share one wait on the login deadline, armed here once per session: when it
  // passes, expire_login marks the login expired and cuts the client's reads,
  // so the step under way ends at once and reports the timeout (login_expired()). One wait instead
  // of racing each step against the timer with ||, which spawns two coroutines a step
  // (docs/benchmarks.md, "One deadline wait per login").
  void watch_login();
  void expire_login();
  [[nodiscard]] bool login_expired() const { return login_ && login_->expired; }
  // Authentication succeeded: the size cap is lifted and the login gate's place given back.
  void logged_in();
  // The admin console instead of a relayed session: login through PostgreSQL, then answers.
  boost::asio::awaitable<void> run_admin_console(Ending& ending);
  struct Relayed {
    protocol::RelayScanner::Step last;  // the step that stopped the walk
    boost::system::error_code write_error;
    // Decided bytes of the buffer the peer's socket did not take at once: written by the pump's
    // coroutine, which then consumes `ready` bytes of the buffer.
    protocol::Bytes rest;
    std::size_t ready = 0;
    bool backlog = false;   // bytes wait in the direction's backlog, to be written before `rest`
    bool ddl_wait = false;  // stopped at `last`, a message that waits for a DDL seed's verdict
    [[nodiscard]] bool must_wait() const noexcept {
      return !write_error && (!rest.empty() || backlog || ddl_wait);
    }
  };
  // What a pump's completion handlers hand to its coroutine (pumps.cpp).
  struct PumpStop {
    bool stopping = false;  // the pump was told to stop: another ended first
    boost::system::error_code read_error;
    bool catalog = false;        // bytes read and not relayed: the catalog comes first
    std::exception_ptr failure;  // thrown while relaying
    Relayed relayed;
    static PumpStop read_failed(const boost::system::error_code& ec) {
      PumpStop stop;
      stop.read_error = ec;
      return stop;
    }
    static PumpStop told_to_stop() {
      PumpStop stop;
      stop.stopping = true;
      return stop;
    }
    static PumpStop needs_catalog() {
      PumpStop stop;
      stop.catalog = true;
      return stop;
    }
    static PumpStop after(const Relayed& relayed) {
      PumpStop stop;
      stop.relayed = relayed;
      return stop;
    }
  };
  struct Turn;
  // What to do with an inspected message too long to hold whole, seen by its head.
  struct HeadVerdict {
    std::vector<std::byte> before;  // written ahead of it
    bool drop = false;              // the whole message is dropped, not forwarded
  };
  // One direction's relay state that outlives a read.
  struct Direction {
    Stream& from;
    Stream& to;
    IoBuffer& buffer;
    protocol::RelayScanner& scanner;
    bool& dropping;  // the rest of a message being dropped is still to come
    // What a write the peer's socket did not take left over, while later bytes were decided.
    std::unique_ptr<std::vector<std::byte>>& backlog;
    bool& filled;    // the last read filled its space: more is probably there
    bool& stopping;  // the pump was told to stop: another ended first
  };
  // The client's direction (client to server) or the server's.
  [[nodiscard]] Direction direction(bool client) noexcept;
  // A server message while standby_check_ screens the login: the replacement to forward (empty:
  // nothing yet), or nullopt to forward it as it is.
  std::optional<std::vector<std::byte>> screen_login(const protocol::MessageHeader& header,
                                                     protocol::Bytes message);
  // The same for a login message too long to hold.
  HeadVerdict screen_long_login_message(char type);
  // Once the check has decided: the client's login is complete if it let the backend through.
  void after_screening();
  // The server side as before any connection: what was read from a refused backend is dropped.
  void reset_server_side();
  // Forwards every decidable byte of the direction's buffer to `to` without waiting: what the
  // socket does not take goes to the backlog or `rest`, and a message that waits for a DDL seed
  // stops the walk. `started` sees the type of every message that begins, inspected or
  // streamed; `inspect` sees each whole inspected message and may return a replacement for it;
  // `head` sees the head of each inspected message too long to hold, which is then streamed.
  // `again`: the buffer starts with this message, already scanned, to be inspected again.
  template <class Started, class Inspect, class Head>
  Relayed relay(Direction way, Started started, Inspect inspect, Head head,
                const protocol::RelayScanner::Step* again);
  // The same for each direction, with its callbacks.
  Relayed relay_client(const protocol::RelayScanner::Step* again = nullptr);
  Relayed relay_server(const protocol::RelayScanner::Step* again = nullptr);
  // Writes `bytes` at once or, past the first that does not go, into the backlog.
  void emit(Stream& to, protocol::Bytes bytes, std::unique_ptr<std::vector<std::byte>>& backlog,
            boost::system::error_code& ec);
  // The pumps' completion handlers (pumps.cpp): the bytes of a read, or of a TLS wait, relayed;
  // nullopt when the pump reads on.
  std::optional<PumpStop> after_read(bool client, const boost::system::error_code& ec,
                                     std::size_t n);
  std::optional<PumpStop> after_tls_wait(bool client, const boost::system::error_code& ec);
  std::optional<PumpStop> take_bytes(bool client, std::size_t n);
  // The relay ended the pump: a write failed, the peer broke the protocol, or (the server's) the
  // backend was refused.
  [[nodiscard]] bool relay_failed(bool client, const Relayed& relayed) const;
  // Starts the direction's next read (or TLS wait) with `turn` as its handler.
  void read_on(Turn&& turn);
  // A Turn's work: the read or wait done, what arrived relayed; nullopt when the pump reads on.
  std::optional<PumpStop> turn(bool client, const boost::system::error_code& ec, std::size_t n,
                               bool tls_wait);
  // Starts (or restarts) a pump's reads, unless it was told to stop; a pump that cannot start
  // ends with the exception.
  void start_pump(bool client);
  // A Turn stopped: what it needs decided at once, or in a coroutine spawned for the wait.
  void after_turns(bool client, PumpStop stop);
  // What a stop decides without waiting: false when the pump ends (why, told to pump_ended).
  bool settle_stop(bool client, const PumpStop& stop);
  // The pump's coroutine, only while the relay waits: the catalog, a write, a DDL seed's
  // verdict. False when the pump ends.
  boost::asio::awaitable<bool> after_stop(bool client, PumpStop stop);
  // Where a stop ends up: the pump reads on, or it is over (with `failure` when one was thrown).
  void stop_settled(bool client, std::exception_ptr failure, bool go_on);
  // Writes the backlog and the rest, waits for a DDL seed's verdict and relays on, until the
  // direction's buffer is decided.
  boost::asio::awaitable<Relayed> finish_relay(bool client, Relayed relayed);
  void enable_rewriting();
  boost::asio::awaitable<void> wait_for_catalog();
  // Why a pump ended, told to pump_ended.
  void client_read_failed(const boost::system::error_code& ec);
  void client_relay_failed(const Relayed& relayed);
  void server_read_failed(const boost::system::error_code& ec);
  void server_relay_failed(const Relayed& relayed);
  // Writes what `to` takes at once; true when done (all written, or ec set); otherwise `bytes`
  // is left holding the rest, for write_rest.
  bool wrote_at_once(Stream& to, protocol::Bytes& bytes, boost::system::error_code& ec);
  boost::asio::awaitable<boost::system::error_code> write_rest(Stream& to, protocol::Bytes rest);
  // Writes all of `bytes`; false (with ec) when the peer is gone.
  boost::asio::awaitable<boost::system::error_code> write_all(Stream& to, protocol::Bytes bytes);
  boost::asio::awaitable<void> tell_client(const Ending& ending);
  void finish(const Ending& ending);
  void on_server_message(const protocol::MessageHeader& header, protocol::Bytes message);
  // Counts and times the client's Query, Sync and FunctionCall (only when observing_).
  void note_client_message(char type);
  // server_pool: follows what the client asked that the server has not finished answering.
  void note_client_request(char type) noexcept;

  Stream client_;
  Stream server_;
  std::shared_ptr<const SessionSettings> settings_;
  SessionList& list_;
  std::list<Session*>::iterator list_position_;
  std::uint64_t id_;
  std::string peer_;
  std::string user_;
  std::string database_;
  // The startup packet's search_path, until the statement rewriting takes it.
  std::unique_ptr<std::string> startup_search_path_;

  std::unique_ptr<StatementRewriting> rewriting_;
  std::unique_ptr<DdlSeeds> ddl_seeds_;  // with rewriting_, when settings_->ddl_seeds
  protocol::RelayScanner from_client_;
  protocol::RelayScanner from_server_;
  IoBuffer client_buffer_;
  IoBuffer server_buffer_;
  // The small fields side by side, so padding does not grow every session.
  bool dropping_from_client_ = false;
  bool dropping_from_server_ = false;
  bool client_spoke_ : 1 = false;  // the client sent something after its startup packet
  bool startup_read_ : 1 = false;
  bool admin_console_ : 1 = false;  // logged in to the admin console
  // server_pool: the client sent extended-protocol messages that no Sync has closed yet. Their
  // implicit transaction must end as PostgreSQL ends it when the client goes (rolled back), not
  // be committed by the reset query.
  bool client_unsynced_ : 1 = false;
  bool authenticated_ : 1 = false;
  bool client_write_interrupted_ : 1 = false;  // a cancelled write may have left half a message
  std::uint8_t coroutines_ = 0;  // spawned and not over: open or after_relay (one, briefly two)
  std::uint32_t backend_pid_ = 0;

  char transaction_status_ = 'I';
  bool server_pump_stopping_ = false;  // the other pump or the login deadline ended first
  bool client_pump_stopping_ = false;  // the same for the client's pump
  bool client_filled_ = false;         // the last read filled its space: more is probably there
  bool server_filled_ = false;
  // server_pool: the client's Query, Sync and FunctionCall messages not yet answered by a
  // ReadyForQuery (a statement under way when the client leaves: the backend is not kept).
  // Sticks at its maximum, which keeps the backend from being parked.
  std::uint16_t client_unanswered_ = 0;
  std::unique_ptr<std::vector<std::byte>> client_backlog_;  // bytes for the server, see Direction
  std::unique_ptr<std::vector<std::byte>> server_backlog_;  // bytes for the client
  std::unique_ptr<Pumps> pumps_;                            // while the pumps run
  // Set by terminate(); allocated then, since few sessions end that way.
  struct Terminate {
    std::string reason;
    std::string client_message;
  };
  std::unique_ptr<Terminate> terminate_;
  // Several hosts and read-write: the login of the current backend, until it is let through.
  std::unique_ptr<HotStandbyCheck> standby_check_;  // allocated: most sessions never have one
  // What a login needs, from the startup packet read until a backend's login is let through
  // (allocated, so that a logged-in session does not carry its room, and kept here rather than
  // in a coroutine frame, which would keep it).
  // With server_pool it stays for the whole session (the credential wiped after the login): the
  // startup packet is the key the backend is parked under, with its login messages.
  struct LoginAgain {
    explicit LoginAgain(std::vector<std::byte> packet) : startup(std::move(packet)) {}
    std::vector<std::byte> startup;                // the client's startup packet
    std::optional<UpstreamCredential> credential;  // auth.mode proxy (wiped when dropped)
    std::vector<std::byte> login_messages;  // server_pool: after AuthenticationOk, to ReadyForQuery
    std::chrono::steady_clock::time_point born;  // server_pool: when the backend logged in
    bool kept = false;    // server_pool: login_messages hold a whole login; the backend may park
    bool reused = false;  // server_pool: the backend was handed over by another client's session
  };
  std::unique_ptr<LoginAgain> login_again_;
  [[nodiscard]] bool backend_may_park() const noexcept {
    return login_again_ && login_again_->kept;
  }
  // The hosts this session tried, in order, and why each would not do.
  // Small: every session carries it, and most never fail a host (causes stays unallocated).
  struct UpstreamAttempts {
    std::uint32_t attempts = 0;            // hosts tried so far
    std::uint32_t first = 0;               // the locator's primary when the first attempt began
    std::uint32_t current = 0;             // the host connected to
    bool refused = false;                  // a host was refused for not taking writes
    std::unique_ptr<std::string> causes_;  // "host: why; host why"
    void add(const std::string& cause) {
      if (!causes_) causes_ = std::make_unique<std::string>();
      *causes_ += (causes_->empty() ? "" : "; ") + cause;
    }
    [[nodiscard]] std::string causes() const { return causes_ ? *causes_ : std::string(); }
  } upstream_;
  std::chrono::steady_clock::time_point started_;
  // Until the client has logged in (logged_in() frees it): the deadline, limits.
  // startup_timeout_seconds from the accept, shared by startup, TLS and the whole login, and the
  // session's place among those logging in.
  struct Login {
    Login(const ContextSocket::executor_type& executor,
          std::chrono::steady_clock::time_point deadline_at, LoginGate::Ticket place)
        : deadline(executor, deadline_at), ticket(std::move(place)) {}
    boost::asio::steady_timer deadline;
    LoginGate::Ticket ticket;
    // The first upstream attempt's outcome, when connect_early made it (see there).
    struct EarlyConnect {
      std::string cause;  // empty: connected
      bool reachable = false;
    };
    std::optional<EarlyConnect> early;
    bool expired = false;  // the deadline passed while the proxy ran a login step (watch_login)
  };
  std::unique_ptr<Login> login_;
  std::chrono::system_clock::time_point connected_at_;
  const char* auth_mechanism_ = "relay";  // a name from auth_mechanism_name()
  Observer& observer_;
  const bool observing_;  // false for the null observer: no clock reads, no timer
  StatementTimer timer_;
  // When the client's first round trip after the last idle ReadyForQuery began (observing only);
  // the epoch while none is under way.
  StatementTimer::Clock::time_point transaction_started_{};
};

}  // namespace seedproxy::proxy
