// Backend message views, byte by byte: each layout decoded, refused at every truncation point,
// with a byte too many, with a terminator missing, and random bytes never read past the end.
#include "proxy/wire/backend_views.hpp"

#include <doctest/doctest.h>

#include "common/sqlstate.hpp"
#include "proxy/wire/messages.hpp"
#include "tests/proxy/wire/view_checks.hpp"
#include "tests/proxy/wire/wire_bytes.hpp"

using namespace seedproxy::protocol;
using seedproxy::test::Body;
using seedproxy::test::refuses_every_truncation;
using seedproxy::test::survives_random_bodies;

namespace {

Bytes span(const Body& body) { return body.bytes(); }

}  // namespace

TEST_CASE("ErrorResponse and NoticeResponse: the fields the proxy reads, others skipped") {
  const Body body = Body()
                        .u8('S')
                        .cstring("FEHLER")
                        .u8('V')
                        .cstring("ERROR")
                        .u8('C')
                        .cstring("42703")
                        .u8('M')
                        .cstring("column \"x\" does not exist")
                        .u8('D')
                        .cstring("detail")
                        .u8('H')
                        .cstring("hint")
                        .u8('P')
                        .cstring("8")
                        .u8('F')
                        .cstring("parse_relation.c")
                        .u8(0);
  const auto fields = read_error_notice(span(body));
  REQUIRE(fields);
  CHECK(fields->severity == "FEHLER");
  CHECK(fields->code == "42703");
  CHECK(fields->message == "column \"x\" does not exist");
  CHECK(fields->detail == "detail");
  CHECK(fields->hint == "hint");
  CHECK(fields->position == "8");
  refuses_every_truncation(body.bytes(), read_error_notice);

  const auto empty = read_error_notice(span(Body().u8(0)));
  REQUIRE(empty);
  CHECK(empty->code.empty());
  CHECK(empty->message.empty());

  CHECK_FALSE(read_error_notice(span(Body().u8('C').cstring("42703"))));  // closing NUL missing
  CHECK_FALSE(read_error_notice(span(Body().u8('C').text("42703"))));     // value unterminated
  CHECK_FALSE(read_error_notice(span(Body().u8('M').text("x").u8(0))));   // NUL only at the end
  CHECK_FALSE(read_error_notice({}));
}

TEST_CASE("the proxy's own ErrorResponse reads back field for field") {
  ErrorFields sent;
  sent.code = seedproxy::sqlstate::generated_always;
  sent.message = "cannot insert a non-DEFAULT value into column \"risk_score\"";
  sent.detail = "Column \"risk_score\" is a generated column.";
  sent.position = 17;
  const auto bytes = error_response(sent);
  const auto fields = read_error_notice(Bytes(bytes).subspan(message_header_size));
  REQUIRE(fields);
  CHECK(fields->severity == "ERROR");
  CHECK(fields->code == sent.code);
  CHECK(fields->message == sent.message);
  CHECK(fields->detail == sent.detail);
  CHECK(fields->hint.empty());
  CHECK(fields->position == "17");
}

TEST_CASE("CommandComplete: the tag") {
  const Body body = Body().cstring("INSERT 0 1");
  REQUIRE(read_command_tag(span(body)));
  CHECK(*read_command_tag(span(body)) == "INSERT 0 1");
  refuses_every_truncation(body.bytes(), read_command_tag);
  CHECK_FALSE(read_command_tag(span(Body().text("ALTER TABLE"))));
}

TEST_CASE("ReadyForQuery: I, T or E, one byte") {
  CHECK(read_ready_for_query(span(Body().u8('I'))) == TransactionStatus::idle);
  CHECK(read_ready_for_query(span(Body().u8('T'))) == TransactionStatus::in_transaction);
  CHECK(read_ready_for_query(span(Body().u8('E'))) == TransactionStatus::failed);
  refuses_every_truncation(Body().u8('T').bytes(), read_ready_for_query);
  CHECK_FALSE(read_ready_for_query(span(Body().u8('X'))));
  CHECK_FALSE(read_ready_for_query(span(Body().u8(0))));
}

TEST_CASE("BackendKeyData: process id and a 4 to 256 byte key") {
  const Body body = Body().u32(4242).u32(0xdeadbeef);
  const auto key = read_backend_key(span(body));
  REQUIRE(key);
  CHECK(key->process_id == 4242);
  CHECK(key->secret.size() == 4);
  for (std::size_t size = 0; size < body.bytes().size(); ++size)
    CHECK_FALSE(read_backend_key(span(body).first(size)));
  // Protocol 3.2: longer keys, up to 256 bytes.
  Body long_key = Body().u32(7);
  for (int i = 0; i < 256; ++i) long_key.u8(static_cast<std::uint8_t>(i));
  REQUIRE(read_backend_key(span(long_key)));
  CHECK(read_backend_key(span(long_key))->secret.size() == 256);
  CHECK_FALSE(read_backend_key(span(long_key.u8(0))));  // 257 bytes
}

TEST_CASE("ParameterStatus: a name and a value, each NUL-terminated") {
  const Body body = Body().cstring("in_hot_standby").cstring("on");
  const auto status = read_parameter_status(span(body));
  REQUIRE(status);
  CHECK(status->name == "in_hot_standby");
  CHECK(status->value == "on");
  refuses_every_truncation(body.bytes(), read_parameter_status);
  CHECK(read_parameter_status(span(Body().cstring("application_name").cstring("")))->value == "");
  CHECK_FALSE(read_parameter_status(span(Body().cstring("a").cstring("b").u8(0))));
}

TEST_CASE("Authentication: the request code, and the layout of the requests that have one") {
  const auto ok = read_authentication(span(Body().u32(authentication::ok)));
  REQUIRE(ok);
  CHECK(ok->code == authentication::ok);
  CHECK(ok->data.empty());
  refuses_every_truncation(Body().u32(authentication::ok).bytes(), read_authentication);
  refuses_every_truncation(Body().u32(authentication::cleartext_password).bytes(),
                           read_authentication);

  const Body md5 = Body().u32(authentication::md5_password).text("salt");
  REQUIRE(read_authentication(span(md5)));
  CHECK(read_authentication(span(md5))->data.size() == 4);
  refuses_every_truncation(md5.bytes(), read_authentication);

  const Body sasl =
      Body().u32(authentication::sasl).cstring("SCRAM-SHA-256-PLUS").cstring("SCRAM-SHA-256").u8(0);
  REQUIRE(read_authentication(span(sasl)));
  CHECK(read_authentication(span(sasl))->data.size() == sasl.bytes().size() - 4);
  refuses_every_truncation(sasl.bytes(), read_authentication);
  CHECK_FALSE(read_authentication(span(Body().u32(authentication::sasl).text("SCRAM"))));

  // SASL continuation data is opaque: any length.
  const Body final = Body().u32(authentication::sasl_final).text("v=abc");
  REQUIRE(read_authentication(span(final)));
  CHECK(read_authentication(span(final))->data.size() == 5);
  CHECK(read_authentication(span(Body().u32(authentication::sasl_final)))->data.empty());
  for (std::size_t size = 0; size < 4; ++size)
    CHECK_FALSE(read_authentication(span(final).first(size)));
}

TEST_CASE("backend views never read past the end of random bodies") {
  survives_random_bodies(read_error_notice, 7);
  survives_random_bodies(read_command_tag, 8);
  survives_random_bodies(read_ready_for_query, 9);
  survives_random_bodies(read_backend_key, 10);
  survives_random_bodies(read_authentication, 11);
  survives_random_bodies(read_parameter_status, 12);
}

TEST_CASE("a read that ends with a whole ReadyForQuery, and what does not") {
  const auto bytes = [](std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (const int v : values) out.push_back(static_cast<std::byte>(v));
    return out;
  };
  for (const char status : {'I', 'T', 'E'}) {
    CAPTURE(status);
    CHECK(ends_with_ready_for_query(bytes({'Z', 0, 0, 0, 5, status})));
    CHECK(ends_with_ready_for_query(bytes({'C', 0, 0, 0, 4, 'Z', 0, 0, 0, 5, status})));
  }
  CHECK_FALSE(ends_with_ready_for_query(bytes({})));
  CHECK_FALSE(ends_with_ready_for_query(bytes({0, 0, 0, 5, 'I'})));          // cut at the start
  CHECK_FALSE(ends_with_ready_for_query(bytes({'Z', 0, 0, 0, 5})));          // cut at the end
  CHECK_FALSE(ends_with_ready_for_query(bytes({'Z', 0, 0, 0, 5, 'X'})));     // not a status
  CHECK_FALSE(ends_with_ready_for_query(bytes({'Z', 0, 0, 0, 6, 'I'})));     // another length
  CHECK_FALSE(ends_with_ready_for_query(bytes({'Z', 0, 0, 1, 5, 'I'})));     // another length
  CHECK_FALSE(ends_with_ready_for_query(bytes({'Z', 0, 0, 0, 5, 'I', 0})));  // more after it
  CHECK_FALSE(ends_with_ready_for_query(bytes({'E', 0, 0, 0, 5, 'I'})));     // another type
}
