// Session-mode connection handling: startup, upstream connect, two relay pumps, reasoned close.
#include "proxy/session/session.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <tuple>
#include <variant>

#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "proxy/admin/admin_console.hpp"
#include "proxy/admin/admin_login.hpp"
#include "proxy/session/cancel.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "proxy/wire/messages.hpp"
#include "proxy/wire/startup.hpp"
#include "seeds/registry/snapshot_source.hpp"

namespace seedproxy::proxy {
namespace {

// server_pool: Session::client_unanswered_ stays here once it gets here (the backend is then
// never parked).
constexpr std::uint16_t unanswered_max = 0xFFFF;

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// PostgreSQL caps authentication tokens at 65535 bytes; nothing bigger is legitimate before
// AuthenticationOk, so an unauthenticated client cannot make the proxy buffer more.
constexpr std::uint32_t max_message_before_auth = 65536;

// What a Parse carries beyond its text: header, a name, 65535 parameter type OIDs.
constexpr std::size_t max_parse_overhead = 320 * 1024;

std::string describe_endpoint(const ContextSocket& socket) {
  error_code ec;
  const auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "unknown peer";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

bool is_disconnect(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

// What the server side inspects before any rewriting: results come from a server we trust and are
// streamed, never buffered whole, so it only has to reject lengths that cannot be valid at all.
protocol::RelayScanner server_scanner() {
  protocol::RelayScanner scanner(protocol::default_max_message_length * 2u - 1u);
  scanner.inspect('Z');  // ReadyForQuery: transaction status
  scanner.inspect('K');  // BackendKeyData: which backend this session is
  scanner.inspect('R');  // Authentication*: lifts the pre-authentication size cap
  // What the proxy inspects from the server is small; anything longer streams past (its head
  // seen), so a client cannot make the proxy hold a long error or notice whole.
  scanner.set_whole_limit(protocol::RelayScanner::head_length);
  return scanner;
}

}  // namespace

Session::Session(ContextSocket client, std::shared_ptr<const SessionSettings> settings,
                 SessionList& list, std::uint64_t id, LoginGate::Ticket login)
    : client_(std::move(client)),
      server_(ContextSocket(client_.socket().get_executor())),
      settings_(std::move(settings)),
      list_(list),
      id_(id),
      from_client_(max_message_before_auth),
      from_server_(server_scanner()),
      started_(std::chrono::steady_clock::now()),
      login_(std::make_unique<Login>(client_.socket().get_executor(),
                                     started_ + seconds(settings_->startup_timeout_seconds),
                                     std::move(login))),
      connected_at_(std::chrono::system_clock::now()),
      observer_(*settings_->observer),
      observing_(&observer_ != &null_observer()) {
  list_position_ = list_.sessions.insert(list_.sessions.end(), this);
  peer_ = describe_endpoint(client_.socket());
}

Session::~Session() { list_.sessions.erase(list_position_); }

void Session::terminate(std::string reason, std::string client_message) {
  if (terminate_) return;
  terminate_ = std::make_unique<Terminate>(Terminate{std::move(reason), std::move(client_message)});
  client_.cancel();
  server_.cancel();
}

SessionList::~SessionList() {
  // A session unlinks itself as it goes.
  while (!sessions.empty()) delete sessions.front();
}

void Session::start(ContextSocket client, std::shared_ptr<const SessionSettings> settings,
                    SessionList& list, std::uint64_t id, LoginGate::Ticket login) {
  auto* session = new Session(std::move(client), std::move(settings), list, id, std::move(login));
  try {
    session->spawn(session->open());
  } catch (...) {
    delete session;  // no room for its coroutine: nothing of it runs yet
    throw;
  }
}

void Session::spawn(asio::awaitable<void> steps) {
  // Counted first: co_spawn runs the coroutine at once, up to its first wait (its completion
  // always comes later, from a handler of its own).
  ++coroutines_;
  try {
    asio::co_spawn(client_.get_executor(), std::move(steps),
                   [this](std::exception_ptr failure) { step_done(std::move(failure)); });
  } catch (...) {
    --coroutines_;
    throw;
  }
}

void Session::step_done(std::exception_ptr failure) {
  --coroutines_;
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      log::error("session",
                 "session " + std::to_string(id_) + " ended by an internal error: " + e.what());
    } catch (...) {
      log::error("session", "session " + std::to_string(id_) + " ended by an internal error");
    }
  }
  free_if_over();
}

void Session::free_if_over() {
  if (coroutines_ > 0 || pumps_) return;
  SessionList& list = list_;
  delete this;
  if (list.on_end) list.on_end();
}

asio::awaitable<void> Session::open() {
  Ending ending;
  error_code ignored;
  client_.socket().set_option(tcp::no_delay(true), ignored);
  client_.socket().set_option(asio::socket_base::keep_alive(true), ignored);

  // This frame lives only until the relay starts. What a login needs again (the startup packet,
  // the credential) waits in login_again_.
  watch_login();
  const bool started = co_await read_startup(ending);
  bool serving = started && client_transport_allowed(ending);
  if (serving && database_ == admin_database) {
    co_await run_admin_console(ending);
    serving = false;
  }
  // auth.mode proxy: the client proves itself here once; the proxy logs in wherever it lands.
  if (serving && settings_->auth_mode == config::AuthMode::proxy)
    serving = co_await authenticate_for_logins(ending);
  if (serving) {
    // Awaits stand alone (GCC 12 miscompiles co_await inside a condition).
    const bool relaying = co_await log_in_and_relay(ending);
    if (relaying) co_return;
  }
  co_await end_session(ending);
}

asio::awaitable<void> Session::after_relay() {
  Ending ending = relay_over();
  // With a primary locator, a backend that turned out not to take writes is left for the next
  // host.
  if (ending.refused_backend && !terminate_) {
    const bool next_host = co_await leave_refused_backend(ending);
    if (next_host) {
      const bool relaying = co_await log_in_and_relay(ending);
      if (relaying) co_return;
    }
  }
  co_await park_server(ending);
  co_await end_session(ending);
}

asio::awaitable<bool> Session::log_in_and_relay(Ending& ending) {
  for (;;) {
    ending.refused_backend = false;
    const bool login_started = co_await start_login(ending);
    if (!login_started) co_return false;
    // The proxy's own login may already have refused the backend (57P03): no relay then.
    if (!ending.refused_backend) {
      // The deadline passed while the upstream connection opened: the client's reads are cut
      // (expire_login), so no relay; the client hears the timeout as from the relay's deadline.
      if (login_expired()) {
        ending = login_timeout();
        co_return false;
      }
      start_relay();
      co_return true;
    }
    if (terminate_) co_return false;
    const bool next_host = co_await leave_refused_backend(ending);
    if (!next_host) co_return false;
  }
}

asio::awaitable<void> Session::end_session(Ending& ending) {
  if (terminate_) {
    ending.reason = terminate_->reason;
    ending.tell(sqlstate::admin_shutdown, terminate_->client_message);
  }
  co_await tell_client(ending);
  finish(ending);
}

Session::Ending Session::login_timeout() const {
  Ending timeout;
  timeout.reason = "client did not log in within limits.startup_timeout_seconds (" +
                   log::seconds_text(settings_->startup_timeout_seconds) + ")";
  // PostgreSQL's own words when authentication_timeout passes.
  timeout.tell(sqlstate::query_canceled, "canceling authentication due to timeout",
               "seedproxy limits.startup_timeout_seconds = " +
                   log::seconds_text(settings_->startup_timeout_seconds));
  return timeout;
}

void Session::when_passed(asio::steady_timer& timer, void (Session::*passed)()) {
  // Counted as a coroutine of the session (after async_wait, which may throw; its handler never
  // runs inside it): the handler runs, cancelled at the latest, before the session can be freed.
  timer.async_wait([this, passed](error_code ec) {
    if (!ec) (this->*passed)();
    --coroutines_;
    free_if_over();
  });
  ++coroutines_;
}

void Session::watch_login() {
  // logged_in() and finish() cancel the wait.
  when_passed(login_->deadline, &Session::expire_login);
}

void Session::expire_login() {
  // While the pumps run, the relay's own wait on the deadline ends the session (start_relay).
  if (!login_ || pumps_) return;
  login_->expired = true;
  // A read begun later ends too: the client's socket reads end-of-file from now on. What the
  // session tells the client about the timeout still goes out. The server's side is left alone:
  // its steps race the deadline themselves (connect_host, login_upstream), as before.
  error_code ignored;
  if (client_.socket().is_open()) client_.socket().shutdown(tcp::socket::shutdown_receive, ignored);
  client_.cancel();
}

void Session::reset_server_side() {
  server_.reset();
  from_server_ = server_scanner();
  server_buffer_.consume(server_buffer_.unread().size());
  server_buffer_.release_if_empty();
  dropping_from_server_ = false;
  backend_pid_ = 0;
  transaction_status_ = 'I';
  standby_check_.reset();
}

void Session::logged_in() {
  authenticated_ = true;
  from_client_.set_max_length(settings_->max_message_length);
  login_.reset();  // the place among those logging in is given back; a pending wait is cancelled
}

bool Session::wrote_at_once(Stream& to, protocol::Bytes& bytes, error_code& ec) {
  // Loopback writes almost always complete at once; only a full socket buffer suspends.
  const std::size_t done = to.write_some(bytes, ec);
  if (ec == asio::error::would_block) ec = {};
  bytes = bytes.subspan(done);
  return ec || bytes.empty();
}

asio::awaitable<error_code> Session::write_rest(Stream& to, protocol::Bytes rest) {
  const bool to_client = &to == &client_;
  if (to_client) client_write_interrupted_ = true;
  // The server's pump, stopped after its last write completed: no new wait on the client (what
  // is left of the message is not sent, so the client hears no error spliced into it).
  if (to_client && server_pump_stopping_) co_return error_code(asio::error::operation_aborted);
  error_code write_ec;
  if (!to.tls()) {
    auto [plain_ec, n] =
        co_await asio::async_write(to.socket(), asio::buffer(rest.data(), rest.size()), use_tuple);
    write_ec = plain_ec;
  } else {
    write_ec = co_await to.write_all(rest);
  }
  if (to_client && !write_ec) client_write_interrupted_ = false;
  co_return write_ec;
}

asio::awaitable<error_code> Session::write_all(Stream& to, protocol::Bytes bytes) {
  error_code ec;
  if (wrote_at_once(to, bytes, ec)) co_return ec;
  co_return co_await write_rest(to, bytes);
}

void Session::on_server_message(const protocol::MessageHeader& header, protocol::Bytes message) {
  const auto body = message.subspan(protocol::message_header_size);
  switch (header.type) {
    case 'Z':
      if (const auto status = protocol::read_ready_for_query(body))
        transaction_status_ = static_cast<char>(*status);
      // The login's own ReadyForQuery answers nothing the client sent (the count stays 0).
      if (client_unanswered_ != 0 && client_unanswered_ != unanswered_max) --client_unanswered_;
      // The backend has started for this client and database (PostgreSQL checks that the
      // database exists only after AuthenticationOk): now, and not before, the proxy follows the
      // database. A name a stranger sends costs nothing; the client sends no statement earlier.
      if (!rewriting_ && authenticated_) enable_rewriting();
      if (observing_) {
        const auto now = StatementTimer::Clock::now();
        if (const auto finished = timer_.ready(now))
          observer_.statement_finished(finished->kind, finished->elapsed);
        // Back to idle: what the client waited for since its first round trip out of idle.
        if (transaction_status_ == 'I' &&
            transaction_started_ != StatementTimer::Clock::time_point{}) {
          observer_.transaction_finished(now - transaction_started_);
          transaction_started_ = {};
        }
      }
      break;
    case 'K':
      if (const auto key = protocol::read_backend_key(body)) backend_pid_ = key->process_id;
      break;
    case 'R':
      // While a login is screened, it is the client's only once the check lets it through.
      if (authenticated_ || (standby_check_ && standby_check_->screening())) break;
      if (const auto request = protocol::read_authentication(body);
          request && request->code == protocol::authentication::ok)
        logged_in();
      break;
    default:
      break;
  }
}

void Session::note_client_message(char type) {
  StatementKind kind;
  switch (type) {
    case 'Q':
      kind = StatementKind::simple_query;
      break;
    case 'S':
      kind = StatementKind::extended_sync;
      break;
    case 'F':
      kind = StatementKind::function_call;
      break;
    default:
      return;
  }
  const auto now = StatementTimer::Clock::now();
  observer_.statement_started(kind);
  timer_.started(kind, now);
  if (transaction_started_ == StatementTimer::Clock::time_point{}) transaction_started_ = now;
}

void Session::note_client_request(char type) noexcept {
  switch (type) {
    case 'Q':
    case 'F':
      if (client_unanswered_ != unanswered_max) ++client_unanswered_;
      break;
    case 'S':
      if (client_unanswered_ != unanswered_max) ++client_unanswered_;
      client_unsynced_ = false;
      break;
    case 'P':
    case 'B':
    case 'E':
    case 'D':
    case 'C':
    case 'H':
      client_unsynced_ = true;
      break;
    default:
      break;
  }
}

asio::awaitable<void> Session::wait_for_catalog() {
  // The database's first snapshot, the catalog after this session's DDL, or a lease to renew:
  // milliseconds as a rule; a registry that cannot be reached is bounded here.
  co_await rewriting_->wait_for_catalog(std::chrono::seconds(2));
}

void Session::enable_rewriting() {
  if (rewriting_ || !settings_->snapshots || !settings_->snapshots->covers(database_)) return;
  rewriting_ = std::make_unique<StatementRewriting>(
      *settings_->snapshots, database_, user_, settings_->max_rewrite_bytes,
      startup_search_path_ ? std::optional<std::string>(std::move(*startup_search_path_))
                           : std::nullopt);
  startup_search_path_.reset();
  rewriting_->set_observer(observer_);
  rewriting_->set_read_tally(settings_->reads);
  // Statements and portals are followed through the extended protocol (reads per Execute,
  // re-Parse of stale prepared statements), and so are the answers to Parse and Close.
  for (const char type : {'Q', 'P', 'B', 'E', 'D', 'C', 'S', 'F'}) from_client_.inspect(type);
  // Statements longer than the rewrite limit are never rewritten: they stream instead of being
  // held whole. The margin holds a Parse's name and up to 65535 parameter type OIDs.
  from_client_.set_whole_limit(settings_->max_rewrite_bytes + max_parse_overhead);
  // Errors and notices get their position back in the client's text.
  for (const char type : {'E', 'N', 'C', '1', '2', '3'}) from_server_.inspect(type);
  if (settings_->ddl_seeds)
    ddl_seeds_ =
        std::make_unique<DdlSeeds>(*settings_->snapshots, database_, settings_->max_rewrite_bytes);
}

void Session::check_for_ends() noexcept {
  client_.socket().check_for_end();
  server_.socket().check_for_end();
}

// Why a pump ended, in ordinary functions so that neither the Ending nor its text is kept in a
// pump's frame.
void Session::client_read_failed(const error_code& ec) {
  Ending ending;
  ending.reason = ec == asio::error::operation_aborted ? "cancelled"
                  : is_disconnect(ec)
                      ? (from_client_.last_type() == 'X' ? "client terminated the session"
                                                         : "client closed the connection")
                      : "client read failed: " + ec.message();
  ending.client_left = is_disconnect(ec);
  pump_ended(0, std::move(ending), nullptr);
}

void Session::client_relay_failed(const Relayed& relayed) {
  Ending ending;
  const auto& step = relayed.last;
  if (relayed.write_error) {
    observer_.upstream_error(UpstreamStage::relay);
    ending.reason = "upstream write failed: " + relayed.write_error.message();
    ending.tell(sqlstate::connection_failure, "server closed the connection unexpectedly");
  } else {
    ending.reason = "protocol violation from client: " + std::string(describe(step.error)) +
                    " (type '" + std::string(1, step.header.type) + "', length " +
                    std::to_string(step.header.length) + ")";
    ending.tell(sqlstate::protocol_violation, std::string(describe(step.error)));
  }
  pump_ended(0, std::move(ending), nullptr);
}

void Session::server_read_failed(const error_code& ec) {
  Ending ending;
  if (ec == asio::error::operation_aborted) {
    ending.reason = "cancelled";
  } else {
    // PostgreSQL sends a FATAL ErrorResponse before closing on purpose; relayed whole, it
    // already tells the client why. Anything else is a lost connection.
    // After the client's Terminate the server closes silently: that is the normal end.
    const bool explained = (from_server_.at_boundary() && from_server_.last_type() == 'E') ||
                           from_client_.last_type() == 'X';
    ending.reason = from_client_.last_type() == 'X' ? "client terminated the session"
                    : explained ? "upstream closed the connection after an error"
                                : "upstream connection lost: " + ec.message();
    if (!explained) {
      observer_.upstream_error(UpstreamStage::relay);
      ending.tell(sqlstate::connection_failure, "server closed the connection unexpectedly");
    }
  }
  pump_ended(1, std::move(ending), nullptr);
}

void Session::server_relay_failed(const Relayed& relayed) {
  Ending ending;
  if (standby_check_ && standby_check_->refused()) {
    // Nothing of this backend's login went to the client; run decides what follows.
    ending.reason = "upstream refused: " + standby_check_->refusal_text();
    ending.refused_backend = true;
  } else if (relayed.write_error) {
    ending.reason = is_disconnect(relayed.write_error)
                        ? "client closed the connection"
                        : "client write failed: " + relayed.write_error.message();
  } else {
    ending.reason =
        "protocol violation from upstream: " + std::string(describe(relayed.last.error));
    ending.protocol_culprit = Peer::server;
    ending.tell(sqlstate::protocol_violation,
                "seedproxy received an invalid message from the server");
  }
  pump_ended(1, std::move(ending), nullptr);
}

ClientInfo Session::info() const {
  ClientInfo out;
  out.id = id_;
  out.user = user_;
  out.database = database_;
  out.address = peer_;
  out.connected_at = connected_at_;
  out.age_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  out.backend_pid = backend_pid_;
  out.rewriting = rewriting_ != nullptr;
  out.tls_version = client_.tls_version();
  out.tls_cipher = client_.tls_cipher();
  out.auth = auth_mechanism_;
  out.server_tls = server_.tls();
  if (admin_console_) {
    out.state = "admin console";
  } else if (!startup_read_) {
    out.state = "startup";
  } else if (!authenticated_) {
    out.state = "authenticating";
  } else if (transaction_status_ == 'T') {
    out.state = "idle in transaction";  // as of the last ReadyForQuery
  } else if (transaction_status_ == 'E') {
    out.state = "idle in transaction (aborted)";
  } else {
    out.state = "idle";
  }
  return out;
}

asio::awaitable<void> Session::run_admin_console(Ending& ending) {
  std::string error;
  const auto parameters = protocol::parse_startup(login_again_->startup, error);
  login_again_.reset();  // the console logs in once, with its own startup packet
  if (!parameters || settings_->admin == nullptr) {
    ending.reason = "admin console unavailable";
    ending.tell(sqlstate::feature_not_supported, "the admin console is not available");
    co_return;
  }
  const auto auth_startup = admin_auth_startup(*parameters, settings_->admin_auth_database);
  std::optional<AdminLogin> login;
  if (settings_->auth_mode == config::AuthMode::proxy) {
    // The proxy checks the password, then PostgreSQL accepts its login to the auth database.
    auto auth_ok = co_await login_in_proxy(auth_startup, ending);
    if (!auth_ok) co_return;
    login = co_await finish_admin_login(client_, server_, user_, settings_->admin_users,
                                        std::move(*auth_ok));
  } else {
    const bool connected = co_await connect_upstream(ending);
    if (!connected) co_return;
    const auto ec = co_await write_all(server_, auth_startup);
    if (ec) {
      ending.reason = "upstream write failed during admin console startup: " + ec.message();
      ending.tell(sqlstate::connection_failure, "server closed the connection unexpectedly");
      co_return;
    }
    // The login shares the startup deadline: a client that stalls mid-authentication goes.
    auto outcome = co_await (admin_login(client_, server_, user_, settings_->admin_users) ||
                             login_->deadline.async_wait(use_tuple));
    if (outcome.index() == 1) {
      ending.reason = "admin console login did not complete in time";
      co_return;
    }
    login = std::move(std::get<0>(outcome));
  }
  if (!login->ok) {
    ending.reason = login->reason;
    if (!login->client_code.empty()) ending.tell(login->client_code, login->client_message);
    if (login->client_code == sqlstate::invalid_authorization_specification)
      settings_->admin->admin_refused();
    co_return;
  }
  logged_in();
  admin_console_ = true;
  log::info("admin", "session " + std::to_string(id_) + " from " + peer_ + ": user " + user_ +
                         " opened the admin console");
  auto end = co_await serve_admin_console(client_, *settings_->admin);
  ending.reason = end.reason;
  if (!end.client_code.empty()) ending.tell(end.client_code, std::move(end.client_message));
}

asio::awaitable<void> Session::tell_client(const Ending& ending) {
  if (ending.client_code.empty() || !client_.socket().is_open()) co_return;
  // Never splice an error into the middle of a relayed server message.
  if (!from_server_.at_boundary() || client_write_interrupted_) co_return;
  protocol::ErrorFields fields;
  fields.severity = protocol::Severity::fatal;
  fields.code = ending.client_code;
  fields.message = ending.client_message;
  fields.detail = ending.client_detail;
  const auto bytes = protocol::error_response(fields);
  asio::steady_timer deadline(client_.socket().get_executor());
  deadline.expires_after(std::chrono::seconds(1));
  co_await (client_.write_all(bytes) || deadline.async_wait(use_tuple));
}

void Session::finish(const Ending& ending) {
  if (login_) login_->deadline.cancel();  // watch_login's wait, so the session can be freed
  error_code ignored;
  if (server_.socket().is_open()) {
    // A clean Terminate lets PostgreSQL end the backend without logging an unexpected EOF. The
    // client's own went up unless the backend might have been parked (server_pool keeps it back).
    const bool terminated = from_client_.last_type() == 'X' && !backend_may_park();
    if (from_client_.at_boundary() && !terminated)
      (void)server_.write_some(protocol::terminate_message, ignored);
    server_.close();
  }
  client_.close();
  if (ending.client_code == sqlstate::protocol_violation)
    observer_.protocol_error(ending.protocol_culprit);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_);
  std::string line = "session " + std::to_string(id_) + " from " + peer_;
  if (!user_.empty()) line += " user=" + user_ + " database=" + database_;
  if (backend_pid_ != 0) line += " backend_pid=" + std::to_string(backend_pid_);
  if (login_again_ && login_again_->reused) line += " (reused)";
  if (client_.tls()) line += " tls=" + client_.tls_version();
  if (authenticated_ && std::string_view(auth_mechanism_) != "relay")
    line += " auth=" + std::string(auth_mechanism_);
  line += " closed after " + log::seconds_text(seconds.count()) + ": " + ending.reason;
  log::info("session", line);
}

}  // namespace seedproxy::proxy
