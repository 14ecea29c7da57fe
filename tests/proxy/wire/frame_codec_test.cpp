// Frame header decoding: every packet shape, every split point, bad lengths, random bytes.
#include "proxy/wire/frame_codec.hpp"

#include <doctest/doctest.h>

#include <random>

#include "tests/proxy/wire/wire_bytes.hpp"

using namespace seedproxy::protocol;
using seedproxy::test::append_u32;
using seedproxy::test::ByteVector;
using seedproxy::test::message;

namespace {

ByteVector startup_shaped(std::uint32_t length, std::uint32_t code) {
  ByteVector out;
  append_u32(out, length);
  append_u32(out, code);
  out.resize(std::max<std::size_t>(length, 8), std::byte{0});
  return out;
}

}  // namespace

TEST_CASE("startup-shaped packets are classified from their first eight bytes") {
  SUBCASE("needs eight bytes, whatever the split") {
    const auto packet = startup_shaped(8, ssl_request_code);
    for (std::size_t cut = 0; cut < 8; ++cut)
      CHECK(decode_startup_header(Bytes(packet).first(cut)).status == Status::need_more);
    CHECK(decode_startup_header(packet).status == Status::frame);
  }
  SUBCASE("SSLRequest and GSSENCRequest are exactly eight bytes") {
    CHECK(decode_startup_header(startup_shaped(8, ssl_request_code)).header.kind ==
          StartupKind::ssl_request);
    CHECK(decode_startup_header(startup_shaped(8, gssenc_request_code)).header.kind ==
          StartupKind::gssenc_request);
    const auto bad = decode_startup_header(startup_shaped(12, ssl_request_code));
    CHECK(bad.status == Status::error);
    CHECK(bad.error == FrameError::request_length);
  }
  SUBCASE("CancelRequest keys of 4 to 256 bytes (protocol 3.2)") {
    CHECK(decode_startup_header(startup_shaped(16, cancel_request_code)).status == Status::frame);
    CHECK(decode_startup_header(startup_shaped(12 + 256, cancel_request_code)).status ==
          Status::frame);
    CHECK(decode_startup_header(startup_shaped(12 + 257, cancel_request_code)).error ==
          FrameError::cancel_length);
    CHECK(decode_startup_header(startup_shaped(15, cancel_request_code)).error ==
          FrameError::cancel_length);
  }
  SUBCASE("StartupMessage 3.0 and 3.2 within 8..10000 bytes") {
    const auto v30 = decode_startup_header(startup_shaped(100, protocol_3_0));
    CHECK(v30.status == Status::frame);
    CHECK(v30.header.kind == StartupKind::startup);
    CHECK(v30.header.length == 100);
    CHECK(decode_startup_header(startup_shaped(100, protocol_3_2)).status == Status::frame);
    CHECK(decode_startup_header(startup_shaped(10000, protocol_3_0)).status == Status::frame);
  }
  SUBCASE("lengths are refused before anything is allocated") {
    for (std::uint32_t length : {0u, 1u, 7u, 10001u, 0x7fffffffu, 0xffffffffu}) {
      ByteVector head;
      append_u32(head, length);
      append_u32(head, protocol_3_0);
      const auto decoded = decode_startup_header(head);
      CHECK(decoded.status == Status::error);
      CHECK(decoded.error == FrameError::startup_length);
    }
  }
  SUBCASE("protocol 2 and unknown majors are refused") {
    CHECK(decode_startup_header(startup_shaped(100, 2u << 16)).error ==
          FrameError::unsupported_protocol);
    CHECK(decode_startup_header(startup_shaped(100, 4u << 16)).error ==
          FrameError::unsupported_protocol);
  }
}

TEST_CASE("typed messages: every split offset, several per buffer, bad lengths") {
  const auto query = message('Q', std::string_view("SELECT 1;\0", 10));
  SUBCASE("a message split at every offset is need_more until whole") {
    for (std::size_t cut = 0; cut < query.size(); ++cut) {
      const auto frame = decode_message(Bytes(query).first(cut), default_max_message_length);
      CHECK(frame.status == Status::need_more);
      CHECK(frame.needed >= cut);
    }
    const auto whole = decode_message(query, default_max_message_length);
    REQUIRE(whole.status == Status::frame);
    CHECK(whole.message.header.type == 'Q');
    CHECK(whole.message.body.size() == 10);
  }
  SUBCASE("several messages in one buffer decode one after another") {
    ByteVector stream;
    for (char type : {'P', 'B', 'D', 'E', 'S'}) {
      const auto m = message(type, std::string(static_cast<std::size_t>(type), 'x'));
      stream.insert(stream.end(), m.begin(), m.end());
    }
    std::string seen;
    Bytes rest(stream);
    while (!rest.empty()) {
      const auto frame = decode_message(rest, default_max_message_length);
      REQUIRE(frame.status == Status::frame);
      seen += frame.message.header.type;
      CHECK(frame.message.body.size() == static_cast<std::size_t>(frame.message.header.type));
      rest = rest.subspan(frame.message.header.total());
    }
    CHECK(seen == "PBDES");
  }
  SUBCASE("length below 4 or above the maximum is an error, decided from the header alone") {
    for (std::uint32_t length : {0u, 3u}) {
      ByteVector bad{std::byte{'Q'}};
      append_u32(bad, length);
      const auto decoded = decode_message_header(bad, default_max_message_length);
      CHECK(decoded.status == Status::error);
      CHECK(decoded.error == FrameError::message_length);
    }
    ByteVector huge{std::byte{'Q'}};
    append_u32(huge, 0x7fffffff);
    CHECK(decode_message_header(huge, default_max_message_length).status == Status::error);
    ByteVector limit{std::byte{'d'}};
    append_u32(limit, 1u << 30);
    CHECK(decode_message_header(limit, 1u << 30).status == Status::frame);
    CHECK(decode_message_header(limit, (1u << 30) - 1).status == Status::error);
  }
  SUBCASE("an empty-bodied message is complete with its header") {
    const auto sync = message('S', "");
    CHECK(decode_message(sync, 1024).status == Status::frame);
  }
}

TEST_CASE("random bytes never crash the decoders and results are self-consistent") {
  std::mt19937 random(20261124);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> size(0, 64);
  for (int round = 0; round < 20000; ++round) {
    ByteVector bytes(static_cast<std::size_t>(size(random)));
    for (auto& b : bytes) b = static_cast<std::byte>(byte(random));
    const auto startup = decode_startup_header(bytes);
    if (startup.status == Status::frame) {
      CHECK(startup.header.length >= 8);
      CHECK(startup.header.length <= max_startup_length);
    }
    const auto frame = decode_message(bytes, 1 << 20);
    if (frame.status == Status::frame) {
      CHECK(frame.message.header.total() <= bytes.size());
      CHECK(frame.message.body.size() + 5 == frame.message.header.total());
    }
    if (frame.status == Status::need_more) CHECK(frame.needed > bytes.size());
  }
}
