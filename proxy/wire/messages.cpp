// Backend message construction: a length-patching writer, ErrorResponse, and an error's or
// notice's position replaced.
#include "proxy/wire/messages.hpp"

#include <string>

#include "common/sqlstate.hpp"
#include "proxy/wire/body_reader.hpp"

namespace seedproxy::protocol {

void PacketWriter::begin(char type) {
  start_ = out_.size();
  out_.push_back(static_cast<std::byte>(type));
  put_u32(0);
}

void PacketWriter::put_u16(std::uint16_t value) {
  out_.push_back(static_cast<std::byte>(value >> 8));
  out_.push_back(static_cast<std::byte>(value));
}

void PacketWriter::put_u32(std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out_.push_back(static_cast<std::byte>(value >> shift));
}

void PacketWriter::put_bytes(std::string_view bytes) {
  for (char c : bytes) out_.push_back(static_cast<std::byte>(c));
}

void PacketWriter::put_bytes(std::span<const std::byte> bytes) {
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

void PacketWriter::put_cstring(std::string_view text) {
  put_bytes(text);
  out_.push_back(std::byte{0});
}

void PacketWriter::finish() {
  const auto length = static_cast<std::uint32_t>(out_.size() - start_ - 1);
  for (int i = 0; i < 4; ++i) out_[start_ + 1 + i] = static_cast<std::byte>(length >> (24 - 8 * i));
}

std::vector<std::byte> cstring_message(char type, std::string_view text) {
  PacketWriter writer;
  writer.begin(type);
  writer.put_cstring(text);
  writer.finish();
  return writer.take();
}

namespace {

std::vector<std::byte> fields_message(char type, std::string_view severity,
                                      const ErrorFields& fields) {
  PacketWriter writer;
  writer.begin(type);
  writer.put_u8('S');
  writer.put_cstring(severity);
  writer.put_u8('V');
  writer.put_cstring(severity);
  writer.put_u8('C');
  writer.put_cstring(fields.code);
  writer.put_u8('M');
  writer.put_cstring(fields.message);
  if (!fields.detail.empty()) {
    writer.put_u8('D');
    writer.put_cstring(fields.detail);
  }
  if (!fields.hint.empty()) {
    writer.put_u8('H');
    writer.put_cstring(fields.hint);
  }
  if (fields.position > 0) {
    writer.put_u8('P');
    writer.put_cstring(std::to_string(fields.position));
  }
  writer.put_u8(0);
  writer.finish();
  return writer.take();
}

}  // namespace

std::vector<std::byte> error_response(const ErrorFields& fields) {
  return fields_message('E', fields.severity == Severity::fatal ? "FATAL" : "ERROR", fields);
}

std::vector<std::byte> notice_response(std::string_view message) {
  ErrorFields fields;
  fields.code = sqlstate::successful_completion;
  fields.message = message;
  return fields_message('N', "NOTICE", fields);
}

std::optional<std::vector<std::byte>> with_position(Bytes message, std::optional<int> position) {
  if (message.size() < message_header_size) return std::nullopt;
  PacketWriter writer;
  writer.begin(static_cast<char>(message[0]));
  BodyReader reader(message.subspan(message_header_size));
  for (;;) {
    const auto field = reader.u8();
    if (!field) return std::nullopt;
    if (*field == 0) break;
    const auto value = reader.cstring();
    if (!value) return std::nullopt;
    if (*field == 'P' && !position) continue;
    writer.put_u8(*field);
    if (*field == 'P')
      writer.put_cstring(std::to_string(*position));
    else
      writer.put_cstring(*value);
  }
  if (!reader.at_end()) return std::nullopt;
  writer.put_u8(0);
  writer.finish();
  return writer.take();
}

}  // namespace seedproxy::protocol
