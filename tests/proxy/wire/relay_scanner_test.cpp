// The relay walk: streamed bodies, whole inspected messages, and byte-exact forwarding for every
// way the stream can be cut into reads.
#include "proxy/wire/relay_scanner.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

#include "tests/proxy/wire/wire_bytes.hpp"

using namespace seedproxy::protocol;
using seedproxy::test::ByteVector;
using seedproxy::test::concat;
using seedproxy::test::message;

namespace {

struct RelayResult {
  ByteVector forwarded;
  std::string inspected;  // types of the inspected messages, in order
  bool error = false;
  std::size_t max_buffered = 0;
};

// Mimics a session pump: bytes arrive in `chunks`, each decidable prefix is forwarded, the
// undecided tail stays buffered for the next read.
RelayResult relay(const ByteVector& stream, const std::vector<std::size_t>& cuts,
                  RelayScanner scanner) {
  RelayResult out;
  ByteVector buffer;
  std::size_t from = 0;
  auto feed = [&](std::size_t to) {
    buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(from),
                  stream.begin() + static_cast<std::ptrdiff_t>(to));
    from = to;
    out.max_buffered = std::max(out.max_buffered, buffer.size());
    std::size_t ready = 0;
    while (ready < buffer.size()) {
      const auto step = scanner.next(Bytes(buffer).subspan(ready));
      if (step.kind == RelayScanner::Kind::message) {
        out.inspected += step.header.type;
        CHECK(step.length == step.header.total());
      } else if (step.kind == RelayScanner::Kind::head) {
        out.inspected += '^';
        out.inspected += step.header.type;
        CHECK(step.length == RelayScanner::head_length);
        CHECK(step.header.total() > RelayScanner::head_length);
      } else if (step.kind != RelayScanner::Kind::pass) {
        out.error = step.kind == RelayScanner::Kind::error;
        break;
      }
      ready += step.length;
    }
    out.forwarded.insert(out.forwarded.end(), buffer.begin(),
                         buffer.begin() + static_cast<std::ptrdiff_t>(ready));
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(ready));
  };
  for (std::size_t cut : cuts) {
    if (out.error) break;
    feed(cut);
  }
  if (!out.error) feed(stream.size());
  return out;
}

RelayScanner server_scanner() {
  RelayScanner scanner(1u << 20);
  scanner.inspect('Z');
  scanner.inspect('K');
  return scanner;
}

ByteVector typical_result() {
  return concat({message('K', std::string(8, '\x01')), message('T', std::string(40, 't')),
                 message('D', std::string(3000, 'd')), message('D', std::string(5, 'e')),
                 message('C', "SELECT 2"), message('Z', "I")});
}

}  // namespace

TEST_CASE("a stream cut once at every offset is forwarded byte for byte") {
  const auto stream = typical_result();
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    const auto result = relay(stream, {cut}, server_scanner());
    REQUIRE(result.forwarded == stream);
    CHECK(result.inspected == "KZ");
    CHECK_FALSE(result.error);
  }
}

TEST_CASE("inspect_all shows every message whole until it is turned off") {
  const auto stream = typical_result();
  auto scanner = server_scanner();
  scanner.inspect_all(true);
  for (std::size_t cut = 0; cut <= stream.size(); cut += 7) {
    const auto result = relay(stream, {cut}, scanner);
    REQUIRE(result.forwarded == stream);
    CHECK(result.inspected == "KTDDCZ");
  }
  scanner.inspect_all(false);
  CHECK(relay(stream, {}, scanner).inspected == "KZ");
}

TEST_CASE("a type byte above 127 is no type: never inspected, forwarded as it came") {
  auto scanner = server_scanner();
  scanner.inspect('\xC8');  // ignored: no message type has it
  const auto stream = concat({message('\xC8', "xyz"), message('\x80', "w"), message('Z', "I")});
  const auto result = relay(stream, {3}, scanner);
  CHECK(result.forwarded == stream);
  CHECK(result.inspected == "Z");
  CHECK_FALSE(result.error);
}

TEST_CASE("a stream delivered one byte at a time is forwarded byte for byte") {
  const auto stream = typical_result();
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  const auto result = relay(stream, cuts, server_scanner());
  CHECK(result.forwarded == stream);
  CHECK(result.inspected == "KZ");
}

TEST_CASE("large streamed bodies are never buffered whole") {
  const auto stream = concat({message('D', std::string(200000, 'x')), message('Z', "T")});
  std::vector<std::size_t> cuts;
  for (std::size_t at = 4096; at < stream.size(); at += 4096) cuts.push_back(at);
  const auto result = relay(stream, cuts, server_scanner());
  CHECK(result.forwarded == stream);
  CHECK(result.inspected == "Z");
  CHECK(result.max_buffered <= 4096 + 6);  // one read plus an undecided header
}

TEST_CASE("random chunkings of a long pipeline forward exactly the input") {
  std::mt19937 random(7);
  ByteVector stream;
  std::string expected;
  for (int i = 0; i < 300; ++i) {
    const char type = "PBEDZKCS"[i % 8];
    const auto m = message(type, std::string(static_cast<std::size_t>(random() % 700), 'q'));
    stream.insert(stream.end(), m.begin(), m.end());
    if (type == 'Z' || type == 'K') expected += type;
  }
  for (int round = 0; round < 200; ++round) {
    std::vector<std::size_t> cuts;
    for (std::size_t at = 0; at < stream.size(); at += 1 + random() % 5000) cuts.push_back(at);
    const auto result = relay(stream, cuts, server_scanner());
    REQUIRE(result.forwarded == stream);
    CHECK(result.inspected == expected);
  }
}

TEST_CASE("a bad length stops the walk after forwarding everything before it") {
  ByteVector bad{std::byte{'Q'}};
  seedproxy::test::append_u32(bad, 2);
  const auto good = message('Q', std::string("SELECT 1\0", 9));
  const auto stream = concat({good, bad, good});
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    RelayScanner scanner(1024);
    const auto result = relay(stream, {cut}, scanner);
    CHECK(result.error);
    CHECK(result.forwarded == good);
  }
}

TEST_CASE("oversized messages are refused by length alone") {
  RelayScanner scanner(65536);
  ByteVector huge{std::byte{'p'}};
  seedproxy::test::append_u32(huge, 65537);
  const auto step = scanner.next(huge);
  CHECK(step.kind == RelayScanner::Kind::error);
  CHECK(step.error == FrameError::message_length);
  scanner.set_max_length(1u << 30);
  CHECK(scanner.next(huge).kind == RelayScanner::Kind::pass);
}

TEST_CASE("boundary and last type follow the stream") {
  RelayScanner scanner = server_scanner();
  const auto error = message('E', "SFATAL");
  CHECK(scanner.at_boundary());
  const auto partial = scanner.next(Bytes(error).first(7));
  CHECK(partial.kind == RelayScanner::Kind::pass);
  CHECK_FALSE(scanner.at_boundary());
  CHECK(scanner.last_type() == 'E');
  const auto rest = scanner.next(Bytes(error).subspan(7));
  CHECK(rest.length == error.size() - 7);
  CHECK(scanner.at_boundary());
}

TEST_CASE("an inspected message over the whole-message limit is shown by its head, then streamed") {
  const std::string sql = "SELECT '" + std::string(300000, 'x') + "'";
  const auto stream = concat({message('Q', sql + std::string(1, '\0')), message('S', ""),
                              message('Q', std::string("SELECT 1\0", 9))});
  auto client_scanner = [] {
    RelayScanner scanner(1u << 30);
    scanner.inspect('Q');
    scanner.inspect('S');
    scanner.set_whole_limit(100000);
    return scanner;
  };
  std::vector<std::size_t> cuts;
  for (std::size_t at = 4096; at < stream.size(); at += 4096) cuts.push_back(at);
  const auto result = relay(stream, cuts, client_scanner());
  CHECK(result.forwarded == stream);
  CHECK(result.inspected == "^QSQ");
  CHECK(result.max_buffered <= RelayScanner::head_length + 4096);
  // Cut anywhere around the head, the same bytes go through in the same steps.
  for (std::size_t cut = 0; cut < RelayScanner::head_length + 16; cut += 997) {
    const auto once = relay(stream, {cut}, client_scanner());
    REQUIRE(once.forwarded == stream);
    CHECK(once.inspected == "^QSQ");
  }
  // The limit never goes below the head: a message that fits in a head is delivered whole.
  RelayScanner small(1u << 30);
  small.inspect('Q');
  small.set_whole_limit(10);
  const auto whole = message('Q', std::string(1000, 'y'));
  CHECK(small.next(whole).kind == RelayScanner::Kind::message);
}
