// Whether the backend a read-write session logs in to can take writes, decided from its login
// messages before the client hears any of them: a backend that reports in_hot_standby=on
// (PostgreSQL 14+) or answers 57P03 (still starting up) is refused. Pure; the session feeds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::proxy {

// PostgreSQL's login, as a session relays it: authentication requests (which the client answers),
// then AuthenticationOk, ParameterStatus (in_hot_standby among them), BackendKeyData and
// ReadyForQuery. Everything from AuthenticationOk on is held until ReadyForQuery says the login
// is over, so a refused backend's AuthenticationOk and ParameterStatus never reach the client.
// Messages before the first authentication request (NoticeResponse, NegotiateProtocolVersion)
// are held too: while the client has heard nothing from this backend, the session may move to
// another host unseen.
class HotStandbyCheck {
 public:
  enum class Verdict : std::uint8_t {
    pass,    // forward this message as it is
    hold,    // kept here (copied); nothing goes to the client yet
    flush,   // forward take_held(), then this message
    refuse,  // drop this message, everything held, and everything after it
  };
  enum class Refusal : std::uint8_t {
    none,
    standby,      // in_hot_standby=on: a hot standby, read-only
    starting_up,  // 57P03 before authentication: starting up, shutting down, or a cold standby
  };

  // A check of a login that PostgreSQL has just been sent.
  HotStandbyCheck() = default;
  // auth.mode proxy: the proxy has logged in already; `auth_ok` (the server's
  // AuthenticationOk, owed to the client) is held first.
  explicit HotStandbyCheck(std::vector<std::byte> auth_ok);

  // A whole server message, header included.
  [[nodiscard]] Verdict on_message(protocol::Bytes message);
  // A message too long to hold, seen by its type only; it streams past unless refused. Never
  // `hold`: held messages go ahead of it (flush) or are dropped with it (refuse).
  [[nodiscard]] Verdict on_long_message(char type);

  // The held messages, in order; the check keeps nothing afterwards.
  [[nodiscard]] std::vector<std::byte> take_held() noexcept;

  // Still deciding, or refused: the session must keep showing it every message.
  [[nodiscard]] bool screening() const noexcept { return state_ != State::done; }
  [[nodiscard]] bool refused() const noexcept { return state_ == State::refused; }
  [[nodiscard]] Refusal refusal() const noexcept { return refusal_; }
  // Why, after the host's name: "is a standby (in_hot_standby=on)".
  [[nodiscard]] std::string refusal_text() const;
  // The backend sent AuthenticationOk (the login is the client's once flushed).
  [[nodiscard]] bool authenticated() const noexcept { return authenticated_; }
  // Something of this backend's went to the client: the session cannot move elsewhere unseen.
  [[nodiscard]] bool client_heard() const noexcept { return client_heard_; }

  // More than this many bytes held: decided at once (PostgreSQL's login is about 1 KiB).
  static constexpr std::size_t max_held = 256 * 1024;

 private:
  enum class State : std::uint8_t { watching, done, refused };

  Verdict before_authentication(char type, protocol::Bytes message);
  Verdict after_authentication(char type, protocol::Bytes message);
  Verdict hold(protocol::Bytes message);
  // The login goes on to the client: what is held first, then this message.
  Verdict finish();
  Verdict refuse(Refusal why);

  State state_ = State::watching;
  Refusal refusal_ = Refusal::none;
  bool authenticated_ = false;
  bool client_heard_ = false;
  bool standby_ = false;      // in_hot_standby=on seen
  std::string refused_with_;  // the server's words, for starting_up
  std::vector<std::byte> held_;
};

}  // namespace seedproxy::proxy
