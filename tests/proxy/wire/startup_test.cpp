// StartupMessage parameters and CancelRequest keys.
#include "proxy/wire/startup.hpp"

#include <doctest/doctest.h>

#include "tests/proxy/wire/wire_bytes.hpp"

using namespace seedproxy::protocol;
using seedproxy::test::append_text;
using seedproxy::test::append_u32;
using seedproxy::test::ByteVector;

namespace {

ByteVector startup(std::string_view pairs, std::uint32_t version = protocol_3_0) {
  ByteVector out;
  append_u32(out, static_cast<std::uint32_t>(8 + pairs.size()));
  append_u32(out, version);
  append_text(out, pairs);
  return out;
}

}  // namespace

TEST_CASE("startup parameters are read in order, database defaults to user") {
  std::string error;
  using namespace std::string_view_literals;
  const auto packet = startup("user\0alice\0application_name\0psql\0\0"sv);
  const auto parsed = parse_startup(packet, error);
  REQUIRE(parsed);
  CHECK(parsed->user == "alice");
  CHECK(parsed->database == "alice");
  CHECK(parsed->application_name == "psql");
  CHECK(parsed->parameters.size() == 2);

  const auto with_db =
      parse_startup(startup("user\0bob\0database\0bank\0\0"sv, protocol_3_2), error);
  REQUIRE(with_db);
  CHECK(with_db->database == "bank");
  CHECK(with_db->protocol == protocol_3_2);
}

TEST_CASE("malformed startup layouts are refused with PostgreSQL's wording") {
  using namespace std::string_view_literals;
  for (auto body : {"user\0alice"sv, "user\0alice\0"sv, "user\0"sv, ""sv, "user\0alice\0\0\0"sv,
                    "\0user\0alice\0\0"sv}) {
    std::string error;
    CHECK_FALSE(parse_startup(startup(body), error));
    CHECK(error.find("invalid startup packet layout") != std::string::npos);
  }
}

TEST_CASE("cancel keys of any allowed length are kept whole") {
  for (std::size_t key_length : {4u, 32u, 256u}) {
    ByteVector packet;
    append_u32(packet, static_cast<std::uint32_t>(12 + key_length));
    append_u32(packet, cancel_request_code);
    append_u32(packet, 4242);
    for (std::size_t i = 0; i < key_length; ++i) packet.push_back(static_cast<std::byte>(i));
    const auto key = parse_cancel(packet);
    CHECK(key.backend_pid == 4242);
    CHECK(key.secret.size() == key_length);
    CHECK(key.secret.back() == static_cast<std::byte>(key_length - 1));
  }
}
