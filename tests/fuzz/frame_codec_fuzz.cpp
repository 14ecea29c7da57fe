// Frame codec fuzzing: answers match the bytes, and whole, cut or chunked streams decode the same.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "proxy/wire/frame_codec.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace seedproxy::protocol;

// Checks what decode_startup_header says about `bytes` against the packet layout it read.
void check_startup_answer(Bytes bytes, const StartupDecode& decoded) {
  if (bytes.size() < 8) {
    FUZZ_CHECK(decoded.status == Status::need_more, "fewer than 8 bytes must be need_more");
    return;
  }
  FUZZ_CHECK(decoded.status != Status::need_more, "8 bytes are enough to classify a packet");
  FUZZ_CHECK(decoded.header.length == read_u32(bytes, 0), "length is the first word");
  FUZZ_CHECK(decoded.header.code == read_u32(bytes, 4), "code is the second word");
  // Only the first 8 bytes may matter.
  const StartupDecode head_only = decode_startup_header(bytes.first(8));
  FUZZ_CHECK(head_only.status == decoded.status && head_only.error == decoded.error &&
                 head_only.header.kind == decoded.header.kind,
             "bytes after the first 8 changed the answer");
  FUZZ_CHECK(!describe(decoded.error).empty(), "every error has a sentence");
  if (decoded.status == Status::error) {
    FUZZ_CHECK(decoded.error != FrameError::none && decoded.error != FrameError::message_length,
               "a startup error names a startup cause");
    return;
  }
  const std::uint32_t length = decoded.header.length;
  FUZZ_CHECK(decoded.error == FrameError::none, "a frame carries no error");
  FUZZ_CHECK(length >= 8 && length <= max_startup_length,
             "accepted startup length " + std::to_string(length));
  switch (decoded.header.kind) {
    case StartupKind::ssl_request:
      FUZZ_CHECK(decoded.header.code == ssl_request_code && length == 8, "SSLRequest shape");
      break;
    case StartupKind::gssenc_request:
      FUZZ_CHECK(decoded.header.code == gssenc_request_code && length == 8, "GSSENCRequest shape");
      break;
    case StartupKind::cancel_request:
      FUZZ_CHECK(decoded.header.code == cancel_request_code && length >= 12 + min_cancel_key &&
                     length <= 12 + max_cancel_key,
                 "CancelRequest length " + std::to_string(length));
      break;
    case StartupKind::startup:
      FUZZ_CHECK((decoded.header.code >> 16) == 3, "only protocol 3 is accepted");
      break;
  }
}

// Checks what decode_message says about `bytes`, and that it agrees with decode_message_header
// and with itself on the frame's own prefix.
void check_message_answer(Bytes bytes, std::uint32_t max_length, const MessageFrame& frame) {
  const MessageDecode head = decode_message_header(bytes, max_length);
  if (bytes.size() < message_header_size) {
    FUZZ_CHECK(frame.status == Status::need_more && frame.needed == message_header_size &&
                   head.status == Status::need_more,
               "a partial header is need_more, needing 5 bytes");
    return;
  }
  FUZZ_CHECK(head.status != Status::need_more, "5 bytes are enough for a header");
  FUZZ_CHECK(
      head.header.type == static_cast<char>(bytes[0]) && head.header.length == read_u32(bytes, 1),
      "header fields are the first 5 bytes");
  if (head.status == Status::error) {
    FUZZ_CHECK(frame.status == Status::error && frame.error == FrameError::message_length,
               "a bad header makes a bad message");
    FUZZ_CHECK(head.header.length < 4 || head.header.length > max_length,
               "refused length " + std::to_string(head.header.length) + " with maximum " +
                   std::to_string(max_length));
    return;
  }
  FUZZ_CHECK(head.header.length >= 4 && head.header.length <= max_length,
             "accepted length " + std::to_string(head.header.length));
  FUZZ_CHECK(frame.status != Status::error, "a good header never makes a framing error");
  const std::uint64_t total = head.header.total();
  if (frame.status == Status::need_more) {
    FUZZ_CHECK(frame.needed == total && frame.needed > bytes.size(),
               "need_more asks for exactly the message, and for more than is there");
    return;
  }
  FUZZ_CHECK(bytes.size() >= total, "a frame is never longer than the input");
  FUZZ_CHECK(frame.message.header.type == head.header.type &&
                 frame.message.header.length == head.header.length,
             "decode_message and decode_message_header agree");
  FUZZ_CHECK(frame.message.body.data() == bytes.data() + message_header_size &&
                 frame.message.body.size() == head.header.body_length(),
             "the body is the bytes after the header, length - 4 of them");
  // The same message alone is a frame; one byte short of it is need_more.
  const auto exact = decode_message(bytes.first(static_cast<std::size_t>(total)), max_length);
  FUZZ_CHECK(
      exact.status == Status::frame && exact.message.body.size() == frame.message.body.size(),
      "a message without what follows it decodes the same");
  const auto short_one =
      decode_message(bytes.first(static_cast<std::size_t>(total - 1)), max_length);
  FUZZ_CHECK(short_one.status == Status::need_more, "one byte short of a message is need_more");
}

enum class End : std::uint8_t { need_more, error, closed };

struct Frame {
  bool startup = false;   // startup-shaped packet, else a typed message
  std::uint8_t kind = 0;  // StartupKind, or the message type byte
  std::uint32_t length = 0;
  std::size_t offset = 0;  // where it starts in the stream
  bool operator==(const Frame&) const = default;
};

struct Decoded {
  std::vector<Frame> frames;
  End end = End::need_more;
  FrameError error = FrameError::none;
  std::size_t consumed = 0;
  bool operator==(const Decoded&) const = default;
};

// A connection's reader in miniature: bytes arrive `chunk` at a time (0: all at once, after
// one cut at `cut`); after each arrival it takes every whole frame off the front of its buffer,
// startup-shaped packets first (SSLRequest and GSSENCRequest keep it there; CancelRequest ends
// the stream) when `startup_phase`, then typed messages.
Decoded decode_stream(Bytes stream, bool startup_phase, std::uint32_t max_length, std::size_t cut,
                      std::size_t chunk) {
  Decoded out;
  std::vector<std::byte> buffer;
  std::size_t front = 0;  // consumed bytes of `buffer`
  std::size_t delivered = 0;
  bool stopped = false;
  const auto decode_available = [&] {
    while (!stopped) {
      const Bytes unread = Bytes(buffer).subspan(front);
      if (startup_phase) {
        const StartupDecode decoded = decode_startup_header(unread);
        check_startup_answer(unread, decoded);
        if (decoded.status == Status::need_more) return;
        if (decoded.status == Status::error) {
          out.end = End::error;
          out.error = decoded.error;
          stopped = true;
          return;
        }
        if (unread.size() < decoded.header.length) return;  // wait for the whole packet
        out.frames.push_back({true, static_cast<std::uint8_t>(decoded.header.kind),
                              decoded.header.length, out.consumed});
        front += decoded.header.length;
        out.consumed += decoded.header.length;
        if (decoded.header.kind == StartupKind::cancel_request) {
          out.end = End::closed;
          stopped = true;
          return;
        }
        if (decoded.header.kind == StartupKind::startup) startup_phase = false;
        continue;
      }
      const MessageFrame frame = decode_message(unread, max_length);
      check_message_answer(unread, max_length, frame);
      if (frame.status == Status::need_more) return;
      if (frame.status == Status::error) {
        out.end = End::error;
        out.error = frame.error;
        stopped = true;
        return;
      }
      const std::size_t total = static_cast<std::size_t>(frame.message.header.total());
      out.frames.push_back({false, static_cast<std::uint8_t>(frame.message.header.type),
                            frame.message.header.length, out.consumed});
      front += total;
      out.consumed += total;
    }
  };
  const auto deliver = [&](std::size_t to) {
    to = std::min(to, stream.size());
    buffer.insert(buffer.end(), stream.begin() + static_cast<std::ptrdiff_t>(delivered),
                  stream.begin() + static_cast<std::ptrdiff_t>(to));
    delivered = to;
    decode_available();
    // Drop what was consumed, as a reader reusing its buffer would.
    buffer.erase(buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(front));
    front = 0;
  };
  if (chunk == 0) {
    deliver(cut);
  } else {
    for (std::size_t at = chunk; at < stream.size() && !stopped; at += chunk) deliver(at);
  }
  if (!stopped) deliver(stream.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  seedproxy::fuzz::InputReader input(data, size);
  const std::uint8_t flags = input.byte();
  const bool startup_phase = (flags & 1) != 0;
  // The limits the proxy uses (64 KiB before login, PostgreSQL's 1 GiB after) and small ones that
  // make the bound itself reachable.
  std::uint32_t max_length = default_max_message_length;
  switch ((flags >> 1) & 3) {
    case 0:
      max_length = 64 * 1024;
      break;
    case 1:
      break;
    case 2:
      max_length = 4 + (flags >> 3);
      break;
    default:
      max_length = 0xffffffffu;
      break;
  }
  const std::uint16_t cut_seed = input.u16();
  const std::size_t chunk = 1 + input.byte() % 64;
  const auto payload = input.rest();
  const Bytes stream(reinterpret_cast<const std::byte*>(payload.data()), payload.size());
  const std::size_t cut = cut_seed % (stream.size() + 1);

  const Decoded whole = decode_stream(stream, startup_phase, max_length, stream.size(), 0);
  const Decoded split = decode_stream(stream, startup_phase, max_length, cut, 0);
  const Decoded chunked = decode_stream(stream, startup_phase, max_length, 0, chunk);
  FUZZ_CHECK(split == whole, "split at " + std::to_string(cut) + " decodes differently");
  FUZZ_CHECK(chunked == whole, std::to_string(chunk) + "-byte chunks decode differently");
  FUZZ_CHECK(whole.consumed <= stream.size(), "consumed more than was sent");
  // The frames tile the consumed prefix.
  std::size_t at = 0;
  for (const auto& frame : whole.frames) {
    FUZZ_CHECK(frame.offset == at, "frames are contiguous");
    at += frame.startup ? frame.length : std::size_t{frame.length} + 1;
  }
  FUZZ_CHECK(at == whole.consumed, "frames cover what was consumed");
  return 0;
}
