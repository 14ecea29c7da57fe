// Pure PostgreSQL v3 framing: bytes in, frame headers (or a precise error) out; no sockets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace seedproxy::protocol {

using Bytes = std::span<const std::byte>;

// Untyped "startup-shaped" packets: Int32 length (self included), Int32 code, body.
inline constexpr std::uint32_t max_startup_length =
    10000;  // PostgreSQL's MAX_STARTUP_PACKET_LENGTH
inline constexpr std::uint32_t cancel_request_code = 80877102;
inline constexpr std::uint32_t ssl_request_code = 80877103;
inline constexpr std::uint32_t gssenc_request_code = 80877104;
inline constexpr std::uint32_t protocol_3_0 = 3u << 16;
inline constexpr std::uint32_t protocol_3_2 = (3u << 16) | 2u;
// Protocol 3.2 lets cancel keys grow to 256 bytes; 3.0 keys are 4 bytes.
inline constexpr std::uint32_t min_cancel_key = 4;
inline constexpr std::uint32_t max_cancel_key = 256;

// Typed messages: Byte1 type, Int32 length (self included, type excluded), body.
inline constexpr std::size_t message_header_size = 5;
// PostgreSQL's PQ_LARGE_MESSAGE_LIMIT: the largest message the server accepts from a client.
inline constexpr std::uint32_t default_max_message_length = 1u << 30;

enum class FrameError : std::uint8_t {
  none,
  startup_length,        // startup-shaped length outside 8..10000
  unsupported_protocol,  // startup with a major version other than 3
  request_length,        // SSLRequest/GSSENCRequest not exactly 8 bytes
  cancel_length,         // CancelRequest key outside 4..256 bytes
  message_length,        // typed message length below 4 or above the configured maximum
};

// A human sentence for logs and ErrorResponse messages.
[[nodiscard]] std::string_view describe(FrameError error) noexcept;

enum class Status : std::uint8_t { need_more, frame, error };

enum class StartupKind : std::uint8_t { startup, ssl_request, gssenc_request, cancel_request };

struct StartupHeader {
  StartupKind kind = StartupKind::startup;
  std::uint32_t length = 0;  // whole packet, length word included
  std::uint32_t code = 0;    // protocol version or request code
};

struct StartupDecode {
  Status status = Status::need_more;
  StartupHeader header;
  FrameError error = FrameError::none;
};

// Classifies a startup-shaped packet from its first 8 bytes and validates its length, so the
// caller can allocate exactly `header.length` bytes. Consumes nothing.
[[nodiscard]] StartupDecode decode_startup_header(Bytes bytes) noexcept;

struct MessageHeader {
  char type = 0;
  std::uint32_t length = 0;  // the wire length word: body + 4
  [[nodiscard]] std::uint64_t total() const noexcept { return std::uint64_t{length} + 1; }
  [[nodiscard]] std::uint32_t body_length() const noexcept { return length - 4; }
};

struct MessageDecode {
  Status status = Status::need_more;
  MessageHeader header;
  FrameError error = FrameError::none;
};

// Decodes and validates one typed message header (needs 5 bytes). Consumes nothing.
[[nodiscard]] MessageDecode decode_message_header(Bytes bytes, std::uint32_t max_length) noexcept;

struct Message {
  MessageHeader header;
  Bytes body;
};

struct MessageFrame {
  Status status = Status::need_more;
  Message message;
  FrameError error = FrameError::none;
  std::size_t needed = message_header_size;  // bytes required in total when need_more
};

// Decodes one whole typed message; need_more until all of it is present. Consumes nothing.
[[nodiscard]] MessageFrame decode_message(Bytes bytes, std::uint32_t max_length) noexcept;

// Big-endian helpers shared by the codec, the message builders and the tests.
[[nodiscard]] inline std::uint32_t read_u32(Bytes bytes, std::size_t at) noexcept {
  return (std::uint32_t(bytes[at]) << 24) | (std::uint32_t(bytes[at + 1]) << 16) |
         (std::uint32_t(bytes[at + 2]) << 8) | std::uint32_t(bytes[at + 3]);
}
[[nodiscard]] inline std::uint16_t read_u16(Bytes bytes, std::size_t at) noexcept {
  return static_cast<std::uint16_t>((std::uint32_t(bytes[at]) << 8) | std::uint32_t(bytes[at + 1]));
}

}  // namespace seedproxy::protocol
