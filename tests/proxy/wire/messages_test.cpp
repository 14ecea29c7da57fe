// ErrorResponse construction, checked by decoding it with the codec.
#include "proxy/wire/messages.hpp"

#include <doctest/doctest.h>

#include <map>
#include <string>

#include "common/sqlstate.hpp"
#include "proxy/wire/frame_codec.hpp"

using namespace seedproxy::protocol;

TEST_CASE("ErrorResponse carries severity, SQLSTATE, message and optional fields") {
  ErrorFields fields;
  fields.severity = Severity::fatal;
  fields.code = seedproxy::sqlstate::protocol_violation;
  fields.message = "invalid message length";
  fields.detail = "length 3";
  const auto bytes = error_response(fields);
  const auto frame = decode_message(bytes, 1 << 20);
  REQUIRE(frame.status == Status::frame);
  CHECK(frame.message.header.type == 'E');
  CHECK(frame.message.header.total() == bytes.size());

  std::map<char, std::string> seen;
  const auto body = frame.message.body;
  std::size_t at = 0;
  while (at < body.size() && body[at] != std::byte{0}) {
    const char code = static_cast<char>(body[at++]);
    std::string value;
    while (body[at] != std::byte{0}) value += static_cast<char>(body[at++]);
    ++at;
    seen[code] = value;
  }
  CHECK(at == body.size() - 1);
  CHECK(seen['S'] == "FATAL");
  CHECK(seen['V'] == "FATAL");
  CHECK(seen['C'] == "08P01");
  CHECK(seen['M'] == "invalid message length");
  CHECK(seen['D'] == "length 3");
  CHECK(seen.count('H') == 0);
}

TEST_CASE("with_position replaces or drops an error's or notice's 'P' and keeps the rest") {
  // Fields in PostgreSQL's order, internal position and query included (they are left alone).
  const auto body = [](std::string_view position) {
    std::string out;
    const auto field = [&](char code, std::string_view value) {
      out += code;
      out += value;
      out += '\0';
    };
    field('S', "ERROR");
    field('C', "42703");
    field('M', "column \"x\" does not exist");
    if (!position.empty()) field('P', position);
    field('p', "3");
    field('q', "SELECT x");
    field('F', "parse_relation.c");
    out += '\0';
    return out;
  };
  const auto message = [](char type, const std::string& fields) {
    std::vector<std::byte> out{static_cast<std::byte>(type)};
    const auto length = static_cast<std::uint32_t>(fields.size() + 4);
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<std::byte>(length >> shift));
    for (char c : fields) out.push_back(static_cast<std::byte>(c));
    return out;
  };
  for (const char type : {'E', 'N'}) {
    const auto original = message(type, body("123"));
    CHECK(with_position(original, 7) == message(type, body("7")));
    CHECK(with_position(original, std::nullopt) == message(type, body("")));
    CHECK(with_position(original, 123) == original);
  }
  // Not well formed: a field without its end, or bytes after the closing NUL.
  auto cut = message('E', body("1"));
  cut.resize(cut.size() - 1);
  CHECK(!with_position(cut, 2).has_value());
  auto trailing = message('E', body("1") + "x");
  CHECK(!with_position(trailing, 2).has_value());
}
