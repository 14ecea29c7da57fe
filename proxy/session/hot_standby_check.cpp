// Screening a backend's login for in_hot_standby=on and 57P03, holding what the client must not
// hear until the backend is known to take writes.
#include "proxy/session/hot_standby_check.hpp"

#include "common/sqlstate.hpp"
#include "proxy/wire/backend_views.hpp"

namespace seedproxy::proxy {

HotStandbyCheck::HotStandbyCheck(std::vector<std::byte> auth_ok)
    : authenticated_(true), held_(std::move(auth_ok)) {}

HotStandbyCheck::Verdict HotStandbyCheck::on_message(protocol::Bytes message) {
  if (state_ == State::done) return Verdict::pass;
  if (state_ == State::refused || message.size() < protocol::message_header_size)
    return Verdict::refuse;
  const char type = static_cast<char>(message[0]);
  return authenticated_ ? after_authentication(type, message)
                        : before_authentication(type, message);
}

HotStandbyCheck::Verdict HotStandbyCheck::on_long_message(char type) {
  if (state_ == State::done) return Verdict::pass;
  if (state_ == State::refused) return Verdict::refuse;
  if (!authenticated_ && type == 'R') {
    // A long authentication request (a GSSAPI token): the client answers it, so it hears it.
    client_heard_ = true;
    return held_.empty() ? Verdict::pass : Verdict::flush;
  }
  if (standby_) return refuse(Refusal::standby);
  return finish();  // nothing after it could be held back
}

HotStandbyCheck::Verdict HotStandbyCheck::before_authentication(char type,
                                                                protocol::Bytes message) {
  const auto body = message.subspan(protocol::message_header_size);
  switch (type) {
    case 'R': {
      const auto request = protocol::read_authentication(body);
      if (request && request->code == protocol::authentication::ok) {
        authenticated_ = true;  // trust, or the end of an exchange the client answered
        return hold(message);
      }
      // A request the client must answer: from now on it has heard this backend.
      client_heard_ = true;
      return held_.empty() ? Verdict::pass : Verdict::flush;
    }
    case 'E': {
      const auto error = protocol::read_error_notice(body);
      if (!client_heard_ && error && error->code == sqlstate::cannot_connect_now) {
        refused_with_ = std::string(error->message);
        return refuse(Refusal::starting_up);
      }
      return finish();  // PostgreSQL's own refusal (password, pg_hba, too many clients)
    }
    default:
      return hold(message);  // NoticeResponse, NegotiateProtocolVersion
  }
}

HotStandbyCheck::Verdict HotStandbyCheck::after_authentication(char type, protocol::Bytes message) {
  const auto body = message.subspan(protocol::message_header_size);
  switch (type) {
    case 'S':
      if (const auto status = protocol::read_parameter_status(body);
          status && status->name == "in_hot_standby")
        standby_ = status->value == "on";
      return hold(message);
    case 'Z':  // the login is over
    case 'E':  // it failed (a database that does not exist, a connection limit)
      return standby_ ? refuse(Refusal::standby) : finish();
    default:
      return hold(message);  // BackendKeyData, NoticeResponse
  }
}

HotStandbyCheck::Verdict HotStandbyCheck::hold(protocol::Bytes message) {
  if (held_.size() + message.size() > max_held)
    return standby_ ? refuse(Refusal::standby) : finish();
  held_.insert(held_.end(), message.begin(), message.end());
  return Verdict::hold;
}

HotStandbyCheck::Verdict HotStandbyCheck::finish() {
  state_ = State::done;
  client_heard_ = true;
  return held_.empty() ? Verdict::pass : Verdict::flush;
}

HotStandbyCheck::Verdict HotStandbyCheck::refuse(Refusal why) {
  state_ = State::refused;
  refusal_ = why;
  held_.clear();
  return Verdict::refuse;
}

std::vector<std::byte> HotStandbyCheck::take_held() noexcept {
  std::vector<std::byte> out;
  out.swap(held_);
  return out;
}

std::string HotStandbyCheck::refusal_text() const {
  switch (refusal_) {
    case Refusal::standby:
      return "is a standby (in_hot_standby=on)";
    case Refusal::starting_up:
      return "is not accepting connections (57P03: " + refused_with_ + ")";
    case Refusal::none:
      break;
  }
  return "was not refused";
}

}  // namespace seedproxy::proxy
