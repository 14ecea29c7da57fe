// Frontend message views, byte by byte: each layout decoded, refused at every truncation point,
// with a byte too many, with a terminator missing, and random bytes never read past the end.
#include "proxy/wire/frontend_views.hpp"

#include <doctest/doctest.h>

#include "tests/proxy/wire/view_checks.hpp"
#include "tests/proxy/wire/wire_bytes.hpp"

using namespace seedproxy::protocol;
using seedproxy::test::Body;
using seedproxy::test::refuses_every_truncation;
using seedproxy::test::survives_random_bodies;

namespace {

Bytes span(const Body& body) { return body.bytes(); }

}  // namespace

TEST_CASE("Query: the text up to its terminator, nothing after it") {
  const Body body = Body().cstring("SELECT 1");
  const auto query = read_query(span(body));
  REQUIRE(query);
  CHECK(query->sql == "SELECT 1");
  CHECK(read_query(span(Body().cstring("")))->sql.empty());
  refuses_every_truncation(body.bytes(), read_query);
  CHECK_FALSE(read_query(span(Body().text("SELECT 1"))));  // terminator missing
  CHECK_FALSE(read_query(span(Body().cstring("SELECT 1").cstring("SELECT 2"))));
}

TEST_CASE("Parse: name, text and the parameter types as sent") {
  const Body body = Body().cstring("s1").cstring("SELECT $1, $2").u16(2).u32(23).u32(25);
  const auto parse = read_parse(span(body));
  REQUIRE(parse);
  CHECK(parse->name == "s1");
  CHECK(parse->sql == "SELECT $1, $2");
  CHECK(parse->parameter_count == 2);
  // The types are the last 2 + 2 * 4 bytes of the body, pointed to, not copied.
  REQUIRE(parse->parameter_types.size() == 10);
  CHECK(parse->parameter_types.data() == body.bytes().data() + body.bytes().size() - 10);
  refuses_every_truncation(body.bytes(), read_parse);

  const auto unnamed = read_parse(span(Body().cstring("").cstring("SELECT 1").u16(0)));
  REQUIRE(unnamed);
  CHECK(unnamed->name.empty());
  CHECK(unnamed->parameter_count == 0);
  CHECK(unnamed->parameter_types.size() == 2);

  CHECK_FALSE(read_parse(span(Body().text("s1"))));                             // name unterminated
  CHECK_FALSE(read_parse(span(Body().cstring("s1").text("SELECT 1"))));         // text unterminated
  CHECK_FALSE(read_parse(span(Body().cstring("s1").cstring("SELECT 1"))));      // count missing
  CHECK_FALSE(read_parse(span(Body().cstring("").cstring("x").u16(1))));        // one type missing
  CHECK_FALSE(read_parse(span(Body().cstring("").cstring("x").u16(0).u8(0))));  // a byte too many
}

TEST_CASE("Bind: portal and statement names; formats and values checked for layout") {
  const Body body = Body()
                        .cstring("p1")
                        .cstring("s1")
                        .u16(2)  // parameter formats
                        .u16(0)
                        .u16(1)
                        .u16(3)  // parameters: text, NULL, empty
                        .u32(3)
                        .text("abc")
                        .u32(0xFFFFFFFFu)
                        .u32(0)
                        .u16(1)  // result formats
                        .u16(1);
  const auto bind = read_bind(span(body));
  REQUIRE(bind);
  CHECK(bind->portal == "p1");
  CHECK(bind->statement == "s1");
  CHECK(bind->parameter_count == 3);
  refuses_every_truncation(body.bytes(), read_bind);

  const auto plain = read_bind(span(Body().cstring("").cstring("").u16(0).u16(0).u16(0)));
  REQUIRE(plain);
  CHECK(plain->portal.empty());
  CHECK(plain->statement.empty());

  CHECK_FALSE(read_bind(span(Body().cstring("p").text("s"))));  // statement unterminated
  // A value longer than the body, and a negative length other than -1 (NULL).
  CHECK_FALSE(
      read_bind(span(Body().cstring("").cstring("").u16(0).u16(1).u32(9).text("ab").u16(0))));
  CHECK_FALSE(
      read_bind(span(Body().cstring("").cstring("").u16(0).u16(1).u32(0xFFFFFFFEu).u16(0))));
  CHECK_FALSE(
      read_bind(span(Body().cstring("").cstring("").u16(0).u16(1).u32(0x80000000u).u16(0))));
}

TEST_CASE("Describe and Close: 'S' or 'P' and a name") {
  const Body statement = Body().u8('S').cstring("s1");
  const auto described = read_describe(span(statement));
  REQUIRE(described);
  CHECK(described->target == Target::statement);
  CHECK(described->name == "s1");
  refuses_every_truncation(statement.bytes(), read_describe);

  const Body portal = Body().u8('P').cstring("");
  const auto closed = read_close(span(portal));
  REQUIRE(closed);
  CHECK(closed->target == Target::portal);
  CHECK(closed->name.empty());
  refuses_every_truncation(portal.bytes(), read_close);

  CHECK_FALSE(read_describe(span(Body().u8('X').cstring("s1"))));  // neither statement nor portal
  CHECK_FALSE(read_close(span(Body().u8(0).cstring("s1"))));
  CHECK_FALSE(read_close(span(Body().u8('S').text("s1"))));  // name unterminated
}

TEST_CASE("Execute: portal and row limit") {
  const Body body = Body().cstring("p1").u32(100);
  const auto execute = read_execute(span(body));
  REQUIRE(execute);
  CHECK(execute->portal == "p1");
  CHECK(execute->max_rows == 100);
  refuses_every_truncation(body.bytes(), read_execute);
  CHECK(read_execute(span(Body().cstring("").u32(0)))->max_rows == 0);
  CHECK_FALSE(read_execute(span(Body().text("p1"))));            // portal unterminated
  CHECK_FALSE(read_execute(span(Body().cstring("p1").u16(0))));  // limit cut short
}

TEST_CASE("frontend views never read past the end of random bodies") {
  survives_random_bodies(read_query, 1);
  survives_random_bodies(read_parse, 2);
  survives_random_bodies(read_bind, 3);
  survives_random_bodies(read_describe, 4);
  survives_random_bodies(read_close, 5);
  survives_random_bodies(read_execute, 6);
}

TEST_CASE("a client read that ends its turn: whole messages, the last a Query or a Sync") {
  const auto bytes = [](std::initializer_list<int> values) {
    std::vector<std::byte> out;
    for (const int v : values) out.push_back(static_cast<std::byte>(v));
    return out;
  };
  const auto query = bytes({'Q', 0, 0, 0, 6, 'x', 0});
  const auto sync = bytes({'S', 0, 0, 0, 4});
  const auto bind_execute_sync = bytes({'B', 0, 0, 0, 4, 'E', 0, 0, 0, 4, 'S', 0, 0, 0, 4});
  CHECK(ends_client_turn(query));
  CHECK(ends_client_turn(sync));
  CHECK(ends_client_turn(bind_execute_sync));
  CHECK_FALSE(ends_client_turn({}));
  CHECK_FALSE(ends_client_turn(bytes({'P', 0, 0, 0, 4})));  // Parse alone: more is coming
  CHECK_FALSE(ends_client_turn(bytes({'H', 0, 0, 0, 4})));  // Flush
  CHECK_FALSE(ends_client_turn(bytes({'X', 0, 0, 0, 4})));  // Terminate: the end comes next
  for (std::size_t cut = 1; cut < bind_execute_sync.size(); ++cut) {
    CAPTURE(cut);
    const Bytes whole(bind_execute_sync);
    CHECK_FALSE(ends_client_turn(whole.first(cut)));  // cut short: not at a boundary
  }
  CHECK_FALSE(ends_client_turn(bytes({'Q', 0, 0, 0, 6, 'x', 0, 'S'})));  // a byte after it
  CHECK_FALSE(ends_client_turn(bytes({'S', 0, 0, 0, 3})));               // a length below 4
  CHECK_FALSE(ends_client_turn(bytes({'S', 0xff, 0xff, 0xff, 0xff})));   // past the end
}
