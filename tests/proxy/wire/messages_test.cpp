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
