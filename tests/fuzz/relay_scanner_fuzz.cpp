// Relay scanner fuzzing: whole, cut or chunked delivery relays the same messages byte for byte.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "proxy/wire/relay_scanner.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace seedproxy::protocol;
using Kind = RelayScanner::Kind;

struct Relayed {
  char type = 0;
  bool inspected = false;  // delivered whole as Kind::message
  std::uint32_t length = 0;
  std::vector<std::byte> bytes;  // as forwarded, header included
  bool operator==(const Relayed&) const = default;
};

struct Relay {
  std::vector<Relayed> messages;
  std::vector<std::byte> forwarded;
  bool error = false;
  FrameError cause = FrameError::none;
  bool operator==(const Relay&) const = default;
};

struct Setup {
  std::uint32_t max_length = default_max_message_length;
  std::vector<char> inspected;
};

RelayScanner make_scanner(const Setup& setup) {
  RelayScanner scanner(setup.max_length);
  for (char type : setup.inspected) scanner.inspect(type);
  return scanner;
}

// A byte above 127 names no message type: inspect() ignores it (RelayScanner keeps 128 bits).
bool is_inspected(const Setup& setup, char type) {
  if (static_cast<unsigned char>(type) > 127) return false;
  return std::find(setup.inspected.begin(), setup.inspected.end(), type) != setup.inspected.end();
}

// A session pump in miniature: bytes arrive `chunk` at a time (0: all at once after one cut at
// `cut`); every decidable prefix is forwarded, the undecided tail stays buffered for the next read.
Relay relay(Bytes stream, const Setup& setup, std::size_t cut, std::size_t chunk) {
  RelayScanner scanner = make_scanner(setup);
  Relay out;
  std::vector<std::byte> buffer;
  std::size_t delivered = 0;
  const auto feed = [&](std::size_t to) {
    to = std::min(to, stream.size());
    buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(delivered),
                  stream.begin() + static_cast<std::ptrdiff_t>(to));
    delivered = to;
    std::size_t ready = 0;
    while (ready < buffer.size()) {
      const Bytes unread = Bytes(buffer).subspan(ready);
      const bool boundary = scanner.at_boundary();
      const char type_before = scanner.last_type();
      const auto step = scanner.next(unread);
      if (step.kind == Kind::need_more) {
        FUZZ_CHECK(boundary, "need_more in the middle of a streamed message");
        // Otherwise the pump would wait forever for bytes it already holds.
        FUZZ_CHECK(step.length > unread.size(), "need_more for " + std::to_string(step.length) +
                                                    " bytes with " + std::to_string(unread.size()) +
                                                    " buffered");
        FUZZ_CHECK(step.length <= std::uint64_t{setup.max_length} + 1,
                   "need_more asks to buffer more than the largest message");
        break;
      }
      if (step.kind == Kind::error) {
        FUZZ_CHECK(boundary, "a framing error in the middle of a streamed message");
        FUZZ_CHECK(step.error == FrameError::message_length, "the scanner's only error");
        FUZZ_CHECK(step.header.length < 4 || step.header.length > setup.max_length,
                   "refused a good length " + std::to_string(step.header.length));
        out.error = true;
        out.cause = step.error;
        break;
      }
      FUZZ_CHECK(
          step.length > 0 && step.length <= unread.size(),
          "a step consumes between 1 and the buffered bytes, not " + std::to_string(step.length));
      const auto taken = unread.first(step.length);
      if (step.kind == Kind::message) {
        FUZZ_CHECK(boundary, "a whole message in the middle of a streamed one");
        FUZZ_CHECK(is_inspected(setup, step.header.type), "whole delivery of an uninspected type");
        FUZZ_CHECK(step.length == step.header.total(), "a message step is the whole message");
        FUZZ_CHECK(scanner.at_boundary() && scanner.last_type() == step.header.type,
                   "after a whole message the scanner is between messages");
        out.messages.push_back({step.header.type, true, step.header.length,
                                std::vector<std::byte>(taken.begin(), taken.end())});
      } else {
        FUZZ_CHECK(step.kind == Kind::pass, "unknown step kind");
        if (boundary) {
          FUZZ_CHECK(!is_inspected(setup, step.header.type), "an inspected type was streamed");
          FUZZ_CHECK(step.header.type == static_cast<char>(unread[0]) &&
                         step.header.length == read_u32(unread, 1),
                     "a new message's header is its first 5 bytes");
          FUZZ_CHECK(step.length <= step.header.total(), "a pass crosses a message boundary");
          FUZZ_CHECK(scanner.last_type() == step.header.type, "last_type follows the stream");
          out.messages.push_back({step.header.type, false, step.header.length, {}});
        } else {
          FUZZ_CHECK(!out.messages.empty() && scanner.last_type() == type_before,
                     "a continued message changed the last type");
        }
        auto& current = out.messages.back();
        current.bytes.insert(current.bytes.end(), taken.begin(), taken.end());
        FUZZ_CHECK(current.bytes.size() <= std::uint64_t{current.length} + 1,
                   "a streamed message overran its length");
        FUZZ_CHECK(scanner.at_boundary() == (current.bytes.size() == current.length + 1ull),
                   "at_boundary disagrees with the bytes forwarded");
      }
      ready += step.length;
    }
    out.forwarded.insert(out.forwarded.end(), buffer.begin(),
                         buffer.begin() + static_cast<std::ptrdiff_t>(ready));
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(ready));
  };
  if (chunk == 0) {
    feed(cut);
  } else {
    for (std::size_t at = chunk; at < stream.size() && !out.error; at += chunk) feed(at);
  }
  if (!out.error) feed(stream.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  seedproxy::fuzz::InputReader input(data, size);
  Setup setup;
  const std::uint8_t limits = input.byte();
  switch (limits & 3) {
    case 0:
      setup.max_length = 64 * 1024;
      break;  // before login
    case 1:
      break;  // PostgreSQL's 1 GiB
    case 2:
      setup.max_length = 4 + (limits >> 2);
      break;
    default:
      setup.max_length = 0xffffffffu;
      break;
  }
  // What the pumps inspect (Query, Parse; ReadyForQuery, BackendKeyData, ErrorResponse, ...),
  // plus any one type the fuzzer names.
  constexpr char common_types[] = {'Q', 'P', 'Z', 'K', 'E', 'S', 'X', 'd'};
  const std::uint8_t mask = input.byte();
  for (int i = 0; i < 8; ++i)
    if (mask & (1 << i)) setup.inspected.push_back(common_types[i]);
  if (const std::uint8_t extra = input.byte(); extra != 0) setup.inspected.push_back(char(extra));
  const std::uint16_t cut_seed = input.u16();
  const std::size_t chunk = 1 + input.byte() % 64;
  const auto payload = input.rest();
  const Bytes stream(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  const std::size_t cut = cut_seed % (stream.size() + 1);

  const Relay whole = relay(stream, setup, stream.size(), 0);
  const Relay split = relay(stream, setup, cut, 0);
  const Relay chunked = relay(stream, setup, 0, chunk);
  FUZZ_CHECK(split == whole, "cut at " + std::to_string(cut) + " relays differently");
  FUZZ_CHECK(chunked == whole, std::to_string(chunk) + "-byte reads relay differently");
  // What was forwarded is exactly the stream's prefix, message after message.
  FUZZ_CHECK(whole.forwarded.size() <= stream.size() &&
                 std::equal(whole.forwarded.begin(), whole.forwarded.end(), stream.begin()),
             "forwarded bytes are not the stream's prefix");
  std::size_t total = 0;
  for (const auto& message : whole.messages) total += message.bytes.size();
  FUZZ_CHECK(total == whole.forwarded.size(), "messages do not add up to the forwarded bytes");
  return 0;
}
