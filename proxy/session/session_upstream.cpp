// A client session's backend: the login (relayed, or the proxy's own in auth.mode proxy), and,
// with several hosts and read-write, the move to the next host when the one the locator named
// turns out not to take writes (a demoted primary the locator has not seen yet).
#include <boost/asio/use_awaitable.hpp>

#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "proxy/session/session.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

}  // namespace

asio::awaitable<bool> Session::authenticate_for_logins(Ending& ending) {
  login_again_->credential = co_await authenticate_in_proxy(ending);
  co_return login_again_->credential.has_value();
}

asio::awaitable<bool> Session::start_login(Ending& ending) {
  std::optional<std::vector<std::byte>> auth_ok;
  if (login_again_->credential) {
    auth_ok =
        co_await login_upstream_in_proxy(login_again_->startup, *login_again_->credential, ending);
    if (!auth_ok) co_return ending.refused_backend;
  } else {
    const bool connected = co_await connect_upstream(ending);
    if (!connected) co_return false;
    const auto ec = co_await write_all(server_, login_again_->startup);
    if (ec) {
      ending.reason = "upstream write failed during startup: " + ec.message();
      ending.tell(sqlstate::connection_failure, "server closed the connection unexpectedly");
      co_return false;
    }
  }
  if (settings_->primary) {
    // Read-write among several hosts: the client hears this backend's login only once it has
    // shown it is no standby.
    standby_check_ = auth_ok ? std::make_unique<HotStandbyCheck>(std::move(*auth_ok))
                             : std::make_unique<HotStandbyCheck>();
    from_server_.inspect_all(true);
    co_return true;
  }
  // One host only: no second login. With server_pool the packet stays, the credential goes.
  if (pooling())
    login_again_->credential.reset();
  else
    login_again_.reset();
  if (auth_ok) {
    const auto ec = co_await write_all(client_, *auth_ok);
    if (ec) {
      ending.reason = "client write failed after login: " + ec.message();
      co_return false;
    }
    logged_in();
    // With server_pool the proxy read the login's messages itself (or replays a parked
    // backend's): the session follows them as if relayed, and keeps the client's Terminate.
    follow_login_messages(*auth_ok);
    if (backend_may_park()) from_client_.inspect('X');
  }
  co_return true;
}

asio::awaitable<bool> Session::leave_refused_backend(Ending& ending) {
  const auto& host = settings_->upstream[upstream_.current];
  const std::string cause = host.name + " " + standby_check_->refusal_text();
  upstream_.add(cause);
  upstream_.refused = true;
  // Unseen only if the client has heard nothing from this backend (it authenticated with the
  // proxy, or PostgreSQL asked it nothing) and has sent nothing since its startup packet.
  const bool unseen = !standby_check_->client_heard() && !client_spoke_;
  observer_.upstream_error(UpstreamStage::standby);
  const auto checked = settings_->primary->suspect();
  log::warning("session", "session " + std::to_string(id_) + " from " + peer_ + " user=" + user_ +
                              " database=" + database_ + ": upstream " + cause +
                              (unseen ? ", trying the next host"
                                      : "; the client authenticated there and must reconnect"));
  if (unseen) {
    reset_server_side();
    co_return true;
  }
  // The client's authentication exchange was with that backend (relayed SCRAM or md5): no other
  // backend can complete it. Its reconnection should find the primary, so the locator's new
  // answer comes first (bounded); the client then hears why, as libpq words a failed attempt.
  (void)co_await settings_->primary->checked(checked, seconds(settings_->connect_timeout_seconds));
  ending.reason = "upstream " + cause + ", after the client authenticated there";
  ending.tell(sqlstate::unable_to_connect,
              "seedproxy could not open a read-write session: " + upstream_.causes(),
              "The client authenticated with that server, so the session cannot move to another "
              "host; seedproxy is looking for the primary again. Connect again.");
  co_return false;
}

std::optional<std::vector<std::byte>> Session::screen_login(const protocol::MessageHeader& header,
                                                            protocol::Bytes message) {
  using Verdict = HotStandbyCheck::Verdict;
  const auto verdict = standby_check_->on_message(message);
  after_screening();
  if (verdict == Verdict::refuse) return std::vector<std::byte>{};  // dropped
  on_server_message(header, message);
  if (verdict == Verdict::pass) return std::nullopt;
  if (verdict == Verdict::hold) return std::vector<std::byte>{};  // kept for later
  auto out = standby_check_->take_held();
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

Session::HeadVerdict Session::screen_long_login_message(char type) {
  using Verdict = HotStandbyCheck::Verdict;
  HeadVerdict out;
  const auto verdict = standby_check_->on_long_message(type);
  after_screening();
  if (verdict == Verdict::refuse) out.drop = true;
  if (verdict == Verdict::flush) out.before = standby_check_->take_held();
  return out;
}

void Session::after_screening() {
  if (standby_check_->screening()) return;
  from_server_.inspect_all(false);
  // Let through: the login held so far is the client's now (a refused one stays screening), and
  // no other host will be logged in to: the startup packet and the credential go.
  if (standby_check_->authenticated() && !authenticated_) logged_in();
  login_again_.reset();
}

}  // namespace seedproxy::proxy
