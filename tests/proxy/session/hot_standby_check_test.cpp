// HotStandbyCheck: PostgreSQL's login messages, as a trusted, a password and a proxy-made login
// send them, from a primary and from a standby; what is held, flushed and refused.
#include "proxy/session/hot_standby_check.hpp"

#include <doctest/doctest.h>

#include <string>

#include "common/sqlstate.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/messages.hpp"
#include "tests/proxy/wire/wire_bytes.hpp"

namespace seedproxy::proxy {
namespace {

using test::Body;
using test::ByteVector;
using test::concat;
using Verdict = HotStandbyCheck::Verdict;

ByteVector auth(std::uint32_t code) { return Body().u32(code).message('R'); }
ByteVector auth_ok() { return auth(protocol::authentication::ok); }
ByteVector parameter(std::string_view name, std::string_view value) {
  return Body().cstring(name).cstring(value).message('S');
}
ByteVector backend_key() { return Body().u32(4242).u32(7).message('K'); }
ByteVector ready() { return Body().u8('I').message('Z'); }
ByteVector error(std::string_view code, std::string_view text) {
  protocol::ErrorFields fields;
  fields.severity = protocol::Severity::fatal;
  fields.code = code;
  fields.message = text;
  return protocol::error_response(fields);
}

// The rest of a login after AuthenticationOk, as PostgreSQL 15 sends it.
std::vector<ByteVector> login_tail(std::string_view hot_standby) {
  return {parameter("application_name", "psql"), parameter("in_hot_standby", hot_standby),
          parameter("server_version", "15.8"), backend_key()};
}

}  // namespace

TEST_CASE("hot standby check: a trusted login on a primary is held whole, then flushed at once") {
  HotStandbyCheck check;
  CHECK(check.on_message(auth_ok()) == Verdict::hold);
  CHECK(check.authenticated());
  ByteVector expected = auth_ok();
  for (const auto& message : login_tail("off")) {
    CHECK(check.on_message(message) == Verdict::hold);
    expected = concat({expected, message});
  }
  CHECK(check.screening());
  CHECK(check.on_message(ready()) == Verdict::flush);
  CHECK(check.take_held() == expected);
  CHECK_FALSE(check.screening());
  CHECK_FALSE(check.refused());
  CHECK(check.client_heard());
  // Decided: the rest of the session passes untouched.
  CHECK(check.on_message(parameter("in_hot_standby", "on")) == Verdict::pass);
}

TEST_CASE("hot standby check: a trusted login on a standby is refused unseen") {
  HotStandbyCheck check;
  CHECK(check.on_message(auth_ok()) == Verdict::hold);
  for (const auto& message : login_tail("on")) CHECK(check.on_message(message) == Verdict::hold);
  CHECK(check.on_message(ready()) == Verdict::refuse);
  CHECK(check.refused());
  CHECK(check.refusal() == HotStandbyCheck::Refusal::standby);
  CHECK(check.refusal_text() == "is a standby (in_hot_standby=on)");
  CHECK_FALSE(check.client_heard());
  CHECK(check.take_held().empty());
  CHECK(check.screening());  // anything more from this backend is dropped as well
  CHECK(check.on_message(ready()) == Verdict::refuse);
}

TEST_CASE("hot standby check: a relayed password exchange passes, its end is held") {
  HotStandbyCheck check;
  // A notice before authentication is held; the client hears it with the request.
  const auto notice = Body().u8('M').cstring("hello").u8(0).message('N');
  CHECK(check.on_message(notice) == Verdict::hold);
  CHECK(check.on_message(auth(protocol::authentication::md5_password)) == Verdict::flush);
  CHECK(check.take_held() == notice);
  CHECK(check.client_heard());
  CHECK(check.on_message(auth(protocol::authentication::sasl_final)) == Verdict::pass);
  CHECK(check.on_message(auth_ok()) == Verdict::hold);
  for (const auto& message : login_tail("on")) CHECK(check.on_message(message) == Verdict::hold);
  CHECK(check.on_message(ready()) == Verdict::refuse);
  CHECK(check.client_heard());  // the session cannot move: the client answered this backend
}

TEST_CASE("hot standby check: the proxy's own login starts with its AuthenticationOk held") {
  HotStandbyCheck primary(auth_ok());
  CHECK(primary.authenticated());
  CHECK_FALSE(primary.client_heard());
  for (const auto& message : login_tail("off")) CHECK(primary.on_message(message) == Verdict::hold);
  CHECK(primary.on_message(ready()) == Verdict::flush);
  CHECK(primary.take_held().front() == std::byte{'R'});

  HotStandbyCheck standby(auth_ok());
  for (const auto& message : login_tail("on")) CHECK(standby.on_message(message) == Verdict::hold);
  CHECK(standby.on_message(ready()) == Verdict::refuse);
  CHECK_FALSE(standby.client_heard());
}

TEST_CASE("hot standby check: 57P03 before authentication is refused, other errors pass") {
  HotStandbyCheck starting;
  CHECK(starting.on_message(error(sqlstate::cannot_connect_now,
                                  "the database system is starting up")) == Verdict::refuse);
  CHECK(starting.refusal() == HotStandbyCheck::Refusal::starting_up);
  CHECK(starting.refusal_text() ==
        "is not accepting connections (57P03: the database system is starting up)");

  HotStandbyCheck wrong_password;
  CHECK(wrong_password.on_message(auth(protocol::authentication::md5_password)) == Verdict::pass);
  CHECK(wrong_password.on_message(error(sqlstate::invalid_password, "password authentication")) ==
        Verdict::pass);
  CHECK_FALSE(wrong_password.screening());
  CHECK_FALSE(wrong_password.refused());

  // After authentication an error ends the check: PostgreSQL's own words reach the client.
  HotStandbyCheck no_database;
  CHECK(no_database.on_message(auth_ok()) == Verdict::hold);
  CHECK(no_database.on_message(error("3D000", "database \"x\" does not exist")) == Verdict::flush);
  CHECK_FALSE(no_database.refused());
}

TEST_CASE("hot standby check: a message too long to hold ends the check or the backend") {
  HotStandbyCheck primary;
  CHECK(primary.on_message(auth_ok()) == Verdict::hold);
  CHECK(primary.on_long_message('S') == Verdict::flush);
  CHECK(primary.take_held() == auth_ok());
  CHECK_FALSE(primary.screening());

  HotStandbyCheck standby;
  CHECK(standby.on_message(auth_ok()) == Verdict::hold);
  CHECK(standby.on_message(parameter("in_hot_standby", "on")) == Verdict::hold);
  CHECK(standby.on_long_message('S') == Verdict::refuse);

  // A long authentication request (GSSAPI) is the client's to answer: it passes, checking goes on.
  HotStandbyCheck gss;
  CHECK(gss.on_long_message('R') == Verdict::pass);
  CHECK(gss.screening());
  CHECK(gss.client_heard());
}

TEST_CASE("hot standby check: what it holds is bounded") {
  HotStandbyCheck check;
  CHECK(check.on_message(auth_ok()) == Verdict::hold);
  const auto big = parameter("big", std::string(60000, 'x'));
  Verdict verdict = Verdict::hold;
  std::size_t held = 0;
  while (verdict == Verdict::hold) {
    verdict = check.on_message(big);
    held += big.size();
    REQUIRE(held < HotStandbyCheck::max_held + 2 * big.size());
  }
  CHECK(verdict == Verdict::flush);
  CHECK_FALSE(check.screening());
  CHECK(check.take_held().size() <= HotStandbyCheck::max_held);
}

}  // namespace seedproxy::proxy
