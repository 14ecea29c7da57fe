// Pure PostgreSQL v3 framing: header decoding and length validation for every frame shape.
#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {

std::string_view describe(FrameError error) noexcept {
  switch (error) {
    case FrameError::none:
      return "no error";
    case FrameError::startup_length:
      return "invalid length of startup packet";
    case FrameError::unsupported_protocol:
      return "unsupported frontend protocol: only protocol 3 is served";
    case FrameError::request_length:
      return "invalid length of SSL or GSSAPI encryption request";
    case FrameError::cancel_length:
      return "invalid length of cancel request packet";
    case FrameError::message_length:
      return "invalid message length";
  }
  return "unknown framing error";
}

StartupDecode decode_startup_header(Bytes bytes) noexcept {
  StartupDecode out;
  if (bytes.size() < 8) return out;
  const std::uint32_t length = read_u32(bytes, 0);
  const std::uint32_t code = read_u32(bytes, 4);
  out.header.length = length;
  out.header.code = code;
  out.status = Status::error;
  if (length < 8 || length > max_startup_length) {
    out.error = FrameError::startup_length;
    return out;
  }
  switch (code) {
    case ssl_request_code:
    case gssenc_request_code:
      out.header.kind =
          code == ssl_request_code ? StartupKind::ssl_request : StartupKind::gssenc_request;
      if (length != 8) {
        out.error = FrameError::request_length;
        return out;
      }
      break;
    case cancel_request_code:
      out.header.kind = StartupKind::cancel_request;
      // length word, code, backend pid, then the key.
      if (length < 12 + min_cancel_key || length > 12 + max_cancel_key) {
        out.error = FrameError::cancel_length;
        return out;
      }
      break;
    default:
      out.header.kind = StartupKind::startup;
      if ((code >> 16) != 3) {
        out.error = FrameError::unsupported_protocol;
        return out;
      }
      break;
  }
  out.status = Status::frame;
  return out;
}

MessageDecode decode_message_header(Bytes bytes, std::uint32_t max_length) noexcept {
  MessageDecode out;
  if (bytes.size() < message_header_size) return out;
  out.header.type = static_cast<char>(bytes[0]);
  out.header.length = read_u32(bytes, 1);
  if (out.header.length < 4 || out.header.length > max_length) {
    out.status = Status::error;
    out.error = FrameError::message_length;
    return out;
  }
  out.status = Status::frame;
  return out;
}

MessageFrame decode_message(Bytes bytes, std::uint32_t max_length) noexcept {
  MessageFrame out;
  const MessageDecode head = decode_message_header(bytes, max_length);
  if (head.status != Status::frame) {
    out.status = head.status;
    out.error = head.error;
    return out;
  }
  out.needed = static_cast<std::size_t>(head.header.total());
  if (bytes.size() < out.needed) return out;
  out.status = Status::frame;
  out.message.header = head.header;
  out.message.body = bytes.subspan(message_header_size, head.header.body_length());
  return out;
}

}  // namespace seedproxy::protocol
