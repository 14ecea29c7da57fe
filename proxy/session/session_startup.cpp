// A session's start: the startup packet (SSLRequest and direct TLS, GSSENCRequest declined,
// CancelRequest forwarded), the client's TLS handshake and transport rules, the upstream
// connection with server_tls, and the proxy's own login (auth.mode = proxy).
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>
#include <variant>

#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "proxy/session/cancel.hpp"
#include "proxy/session/client_auth.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_login.hpp"
#include "proxy/tls/upstream_tls.hpp"
#include "proxy/wire/startup.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using boost::system::error_code;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A setting the session keeps only when present: a null pointer costs 8 bytes, an empty optional
// string 40.
std::unique_ptr<std::string> boxed(std::optional<std::string> text) {
  return text ? std::make_unique<std::string>(std::move(*text)) : nullptr;
}

// The session keeps the mechanism that authenticated its client as a pointer to one of these
// names, not a string of its own (SHOW CLIENTS and the session's log line read it).
const char* auth_mechanism_name(std::string_view mechanism) {
  for (const char* name : {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "md5", "trust"})
    if (mechanism == name) return name;
  return "SASL";
}

// The first byte of a TLS record carrying a handshake: a client starting TLS at once (PostgreSQL
// 17's sslnegotiation=direct). No startup packet can begin with it (its length would be > 352 MB).
constexpr std::byte tls_handshake_record{0x16};

bool is_disconnect(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::error::connection_aborted;
}

TlsOutcome outcome_of(const TlsHandshake& handshake) {
  if (handshake.certificate_failed) return TlsOutcome::certificate;
  if (handshake.closed) return TlsOutcome::closed;
  return TlsOutcome::protocol;
}

}  // namespace

asio::awaitable<bool> Session::start_client_tls(bool direct, Ending& ending) {
  // Only where PostgreSQL authenticates the client anyway: in auth.mode proxy no stranger may
  // start a backend before the proxy has checked its password. The login gate bounds how many
  // sessions can hold one before they log in, as it bounds relayed logins.
  if (settings_->auth_mode != config::AuthMode::relay || settings_->upstream.empty())
    co_return co_await client_tls_handshake(direct, ending);
  const bool ok = co_await (client_tls_handshake(direct, ending) && connect_early());
  co_return ok;
}

asio::awaitable<void> Session::connect_early() {
  upstream_.first = static_cast<std::uint32_t>(first_upstream_host());
  Login::EarlyConnect early;
  early.cause = co_await connect_host(settings_->upstream[upstream_.first], early.reachable);
  login_->early = std::move(early);
}

asio::awaitable<bool> Session::client_tls_handshake(bool direct, Ending& ending) {
  const auto& tls = *settings_->client_tls;
  const auto handshake = co_await client_.accept_tls(tls.context.get());
  if (login_expired()) {
    observer_.tls_handshake(Peer::client, TlsOutcome::timeout);
    ending.reason = "client did not complete the TLS handshake in time";
    co_return false;
  }
  if (!handshake.ok) {
    observer_.tls_handshake(Peer::client, outcome_of(handshake));
    ending.reason = "TLS handshake with the client failed: " + handshake.error;
    co_return false;
  }
  // PostgreSQL 17 refuses direct TLS without ALPN: a client that skipped it may be speaking some
  // other protocol to a port it took for something else.
  if (direct && client_.alpn() != postgresql_alpn) {
    observer_.tls_handshake(Peer::client, TlsOutcome::no_alpn);
    ending.reason = "direct TLS connection without ALPN \"postgresql\"";
    ending.tell(sqlstate::protocol_violation,
                "received direct SSL connection request without ALPN protocol negotiation "
                "extension");
    co_return false;
  }
  observer_.tls_handshake(Peer::client, TlsOutcome::ok);
  co_return true;
}

asio::awaitable<bool> Session::accept_direct_tls(Ending& ending) {
  (void)co_await client_.socket().async_wait(tcp::socket::wait_read, use_tuple);
  if (login_expired()) {
    ending.reason = "client did not complete startup in time";
    co_return false;
  }
  // A look at the first byte, without taking it: a startup packet is read as usual.
  std::array<std::byte, 1> first{};
  error_code ec;
  const auto n = client_.socket().receive(asio::buffer(first), tcp::socket::message_peek, ec);
  if (ec || n != 1 || first[0] != tls_handshake_record) co_return true;
  co_return co_await start_client_tls(true, ending);
}

bool Session::client_transport_allowed(Ending& ending) {
  const auto& tls = *settings_->client_tls;
  if (tls.required() && !client_.tls()) {
    observer_.tls_handshake(Peer::client, TlsOutcome::plaintext_refused);
    ending.reason = "plain-text connection refused: client_tls.sslmode is " +
                    std::string(config::to_string(tls.mode));
    ending.tell(sqlstate::invalid_authorization_specification,
                "SSL connection is required (seedproxy client_tls.sslmode = " +
                    std::string(config::to_string(tls.mode)) + ")",
                "Connect with sslmode=require or stronger.");
    return false;
  }
  if (tls.mode == config::SslMode::verify_full) {
    // As PostgreSQL's clientcert=verify-full: the certificate must name the user.
    const auto name = peer_common_name(client_.ssl());
    if (name != user_) {
      ending.reason = "client certificate names \"" + name + "\", not user \"" + user_ + "\"";
      ending.tell(sqlstate::invalid_authorization_specification,
                  "certificate authentication failed for user \"" + user_ + "\"");
      return false;
    }
  }
  return true;
}

asio::awaitable<bool> Session::read_startup(Ending& ending) {
  using protocol::StartupKind;
  const bool tls_offered = settings_->client_tls->context != nullptr;
  if (tls_offered) {
    const bool usable = co_await accept_direct_tls(ending);
    if (!usable) co_return false;
  }
  bool ssl_answered = client_.tls();
  bool gss_answered = false;
  for (;;) {
    // The length word alone decides whether the packet is acceptable, as in PostgreSQL.
    std::array<std::byte, 8> head{};
    for (const std::size_t part : {std::size_t{0}, std::size_t{4}}) {
      const auto ec = co_await client_.read_exact(std::span(head).subspan(part, 4));
      if (login_expired()) {
        ending.reason = "client did not complete startup in time";
        co_return false;
      }
      if (ec) {
        ending.reason = is_disconnect(ec) ? "client closed the connection before startup"
                                          : "client read failed during startup: " + ec.message();
        co_return false;
      }
      const auto length = protocol::read_u32(head, 0);
      if (part == 0 && (length < 8 || length > protocol::max_startup_length)) {
        ending.reason = "protocol violation in startup: invalid length of startup packet (" +
                        std::to_string(length) + " bytes)";
        ending.tell(sqlstate::protocol_violation,
                    std::string(describe(protocol::FrameError::startup_length)));
        co_return false;
      }
    }
    const auto decoded = protocol::decode_startup_header(head);
    if (decoded.status == protocol::Status::error) {
      ending.reason = "protocol violation in startup: " + std::string(describe(decoded.error));
      if (decoded.error == protocol::FrameError::unsupported_protocol) {
        const auto version = decoded.header.code;
        ending.tell(sqlstate::feature_not_supported,
                    "unsupported frontend protocol " + std::to_string(version >> 16) + "." +
                        std::to_string(version & 0xffff) + ": server supports 3.0 to 3.2");
      } else {
        ending.tell(sqlstate::protocol_violation, std::string(describe(decoded.error)));
      }
      co_return false;
    }
    const auto& header = decoded.header;
    if (header.kind == StartupKind::ssl_request || header.kind == StartupKind::gssenc_request) {
      const bool ssl = header.kind == StartupKind::ssl_request;
      bool& answered = ssl ? ssl_answered : gss_answered;
      // After TLS is up, any encryption request is a violation, as in PostgreSQL.
      if (answered || client_.tls()) {
        ending.reason = "protocol violation: repeated encryption request";
        ending.tell(sqlstate::protocol_violation, "repeated SSL or GSSAPI encryption request");
        co_return false;
      }
      answered = true;
      // GSSAPI encryption is never offered; TLS when client_tls has a certificate.
      const bool accept = ssl && tls_offered;
      const std::array<std::byte, 1> answer{accept ? std::byte{'S'} : std::byte{'N'}};
      const auto ec = co_await client_.write_all(answer);
      if (ec) {
        ending.reason = "client write failed during startup: " + ec.message();
        co_return false;
      }
      if (!accept) continue;
      const bool started = co_await start_client_tls(false, ending);
      if (!started) co_return false;
      continue;
    }
    std::vector<std::byte> packet(header.length);
    std::copy(head.begin(), head.end(), packet.begin());
    const auto rest = co_await client_.read_exact(std::span(packet).subspan(8));
    if (login_expired() || rest) {
      ending.reason = "client sent an incomplete startup packet";
      co_return false;
    }
    if (header.kind == StartupKind::cancel_request) {
      const auto key = protocol::parse_cancel(packet);
      ending.reason = "cancel request for backend " + std::to_string(key.backend_pid);
      forward_cancel(client_.socket().get_executor(), std::move(packet), settings_);
      co_return false;
    }
    std::string error;
    const auto parameters = protocol::parse_startup(packet, error);
    if (!parameters) {
      ending.reason = "protocol violation in startup: " + error;
      ending.tell(sqlstate::protocol_violation, error);
      co_return false;
    }
    user_ = parameters->user;
    database_ = parameters->database;
    startup_read_ = true;
    startup_search_path_ = boxed(protocol::startup_setting(*parameters, "search_path"));
    login_again_ = std::make_unique<LoginAgain>(std::move(packet));
    co_return true;
  }
}

asio::awaitable<std::string> Session::connect_host(const UpstreamHost& host, bool& reachable) {
  asio::steady_timer deadline(client_.socket().get_executor());
  deadline.expires_after(seconds(settings_->connect_timeout_seconds));
  const auto began = std::chrono::steady_clock::now();
  auto outcome = co_await (asio::async_connect(server_.socket(), host.endpoints, use_tuple) ||
                           deadline.async_wait(use_tuple));
  if (outcome.index() == 1)
    co_return "timed out after " + log::seconds_text(settings_->connect_timeout_seconds);
  if (auto ec = std::get<0>(std::get<0>(outcome))) co_return ec.message();
  reachable = true;
  error_code ignored;
  server_.socket().set_option(tcp::no_delay(true), ignored);
  server_.socket().set_option(asio::socket_base::keep_alive(true), ignored);
  server_.socket().non_blocking(true, ignored);
  const auto& tls = *settings_->server_tls;
  if (tls.context) {
    auto negotiated = co_await (negotiate_upstream_tls(server_, tls, host.host) ||
                                deadline.async_wait(use_tuple));
    if (negotiated.index() == 1) {
      observer_.tls_handshake(Peer::server, TlsOutcome::timeout);
      co_return "TLS negotiation timed out";
    }
    const auto& result = std::get<0>(negotiated);
    if (!result.ok) {
      observer_.tls_handshake(Peer::server, result.verification_failed ? TlsOutcome::certificate
                                                                       : TlsOutcome::protocol);
      co_return result.error;
    }
    if (result.encrypted) observer_.tls_handshake(Peer::server, TlsOutcome::ok);
  }
  observer_.upstream_connected(std::chrono::steady_clock::now() - began);
  co_return std::string{};
}

std::size_t Session::first_upstream_host() const {
  return settings_->primary ? settings_->primary->primary() : 0;
}

asio::awaitable<bool> Session::connect_upstream(Ending& ending) {
  const auto& hosts = settings_->upstream;
  auto& tried = upstream_;
  // connect_early may have made the first attempt already.
  auto early = login_ ? std::exchange(login_->early, std::nullopt) : std::nullopt;
  if (tried.attempts == 0 && !early)
    tried.first = static_cast<std::uint32_t>(first_upstream_host());
  const std::size_t first = tried.first;
  // libpq's order, except that the host last found to be the primary goes first. A session that
  // moved on from a standby carries on down the same order: every host is tried once at most.
  while (tried.attempts < hosts.size()) {
    const std::size_t attempt = tried.attempts++;
    const std::size_t index = attempt == 0 ? first : (attempt <= first ? attempt - 1 : attempt);
    const auto& host = hosts[index];
    bool reachable = false;
    std::string cause;
    if (attempt == 0 && early) {
      cause = std::move(early->cause);
      reachable = early->reachable;
    } else {
      cause = co_await connect_host(host, reachable);
    }
    if (cause.empty()) {
      tried.current = static_cast<std::uint32_t>(index);
      co_return true;
    }
    if (terminate_) co_return false;
    if (attempt == 0 && settings_->primary) settings_->primary->suspect();
    tried.add(host.name + ": " + cause);
    if (reachable) break;  // TLS refused: nothing is tried in plain text, nor elsewhere
  }
  observer_.upstream_error(UpstreamStage::connect);
  // One line, host and reason; the client hears 08001 and nothing is tried in plain text.
  ending.reason = "could not connect to upstream " + tried.causes();
  ending.tell(sqlstate::unable_to_connect,
              tried.refused ? "seedproxy could not open a read-write session: " + tried.causes()
                            : "seedproxy could not connect to the server at " + tried.causes());
  co_return false;
}

asio::awaitable<std::optional<std::vector<std::byte>>> Session::login_in_proxy(
    std::vector<std::byte> startup, Ending& ending) {
  auto credential = co_await authenticate_in_proxy(ending);
  if (!credential) co_return std::nullopt;
  co_return co_await login_upstream_in_proxy(startup, std::move(*credential), ending);
}

asio::awaitable<std::optional<UpstreamCredential>> Session::authenticate_in_proxy(Ending& ending) {
  // The deadline counts from the accept: startup, TLS and this whole exchange share it.
  auto& deadline = login_->deadline;
  ClientAuthRequest request;
  request.user = user_;
  request.trusted = std::find(settings_->trust_users.begin(), settings_->trust_users.end(),
                              user_) != settings_->trust_users.end();
  if (client_.tls()) request.end_point_hash = settings_->client_tls->end_point_hash;
  // Every login asks for its secret, known role or not: the same round trip either way.
  SecretLookup lookup;
  if (!request.trusted) {
    auto found = co_await (settings_->secrets->lookup(user_) || deadline.async_wait(use_tuple));
    if (found.index() == 1) {
      ending.reason = "the secret of user \"" + user_ + "\" was not found in time";
      co_return std::nullopt;
    }
    lookup = std::move(std::get<0>(found));
  }
  auto client_auth = co_await authenticate_client(client_, request, std::move(lookup));
  if (login_expired()) {
    ending.reason = "client did not log in within limits.startup_timeout_seconds (" +
                    log::seconds_text(settings_->startup_timeout_seconds) + ")";
    ending.tell(sqlstate::query_canceled, "canceling authentication due to timeout",
                "seedproxy limits.startup_timeout_seconds = " +
                    log::seconds_text(settings_->startup_timeout_seconds));
    co_return std::nullopt;
  }
  if (!client_auth.ok) {
    ending.reason = std::move(client_auth.reason);
    if (!client_auth.code.empty())
      ending.tell(client_auth.code, std::move(client_auth.message), std::move(client_auth.detail));
    co_return std::nullopt;
  }
  auth_mechanism_ = auth_mechanism_name(client_auth.mechanism);
  co_return std::move(client_auth.credential);
}

// With several hosts and read-write, a backend that refused the proxy's own login with 57P03
// (starting up, shutting down, a cold standby) is left for the next host, as a relayed login is:
// the client has heard nothing from it.
bool Session::refused_while_starting_up(const std::vector<std::byte>& server_error,
                                        Ending& ending) {
  if (!settings_->primary || server_error.empty()) return false;
  HotStandbyCheck check;
  if (check.on_message(server_error) != HotStandbyCheck::Verdict::refuse) return false;
  standby_check_ = std::make_unique<HotStandbyCheck>(std::move(check));
  ending.reason = "upstream refused: " + standby_check_->refusal_text();
  ending.refused_backend = true;
  return true;
}

asio::awaitable<std::optional<std::vector<std::byte>>> Session::login_upstream_in_proxy(
    const std::vector<std::byte>& startup, UpstreamCredential credential, Ending& ending) {
  if (pooling())
    if (auto reused = reuse_server(startup)) co_return reused;
  const bool connected = co_await connect_upstream(ending);
  if (!connected) co_return std::nullopt;
  const auto ec = co_await write_all(server_, startup);
  if (ec) {
    ending.reason = "upstream write failed during startup: " + ec.message();
    ending.tell(sqlstate::connection_failure, "server closed the connection unexpectedly");
    co_return std::nullopt;
  }
  UpstreamLoginOptions options;
  options.server_identity_verified =
      server_.tls() && settings_->server_tls->mode == config::SslMode::verify_full;
  auto logged_in = co_await (login_upstream(server_, std::move(credential), options) ||
                             login_->deadline.async_wait(use_tuple));
  if (logged_in.index() == 1) {
    ending.reason = "the server did not complete the login in time";
    ending.tell(sqlstate::unable_to_connect, "seedproxy could not log in to the server in time");
    co_return std::nullopt;
  }
  auto login = std::move(std::get<0>(logged_in));
  if (!login.ok && refused_while_starting_up(login.server_error, ending)) co_return std::nullopt;
  if (!login.ok) {
    ending.reason = std::move(login.reason);
    if (!login.server_error.empty())
      (void)co_await write_all(client_, login.server_error);  // PostgreSQL's own words
    else
      ending.tell(login.code, std::move(login.message));
    co_return std::nullopt;
  }
  if (pooling()) co_return co_await read_login_messages(std::move(login.auth_ok), ending);
  co_return std::move(login.auth_ok);
}

}  // namespace seedproxy::proxy
