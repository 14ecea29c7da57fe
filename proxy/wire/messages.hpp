// Building backend messages the proxy speaks itself (ErrorResponse, single-byte answers), the
// frontend messages it sends PostgreSQL on its own (Query, Terminate), and the one it edits on the
// way through (an error's or notice's position).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/sqlstate.hpp"
#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {

// Appends one typed message; the length word is patched in by finish().
class PacketWriter {
 public:
  void begin(char type);
  void put_u8(std::uint8_t value) { out_.push_back(static_cast<std::byte>(value)); }
  void put_u16(std::uint16_t value);
  void put_u32(std::uint32_t value);
  void put_cstring(std::string_view text);  // text then a NUL
  void put_bytes(std::string_view bytes);
  void put_bytes(std::span<const std::byte> bytes);
  void finish();
  [[nodiscard]] std::vector<std::byte> take() { return std::move(out_); }
  [[nodiscard]] const std::vector<std::byte>& bytes() const noexcept { return out_; }

 private:
  std::vector<std::byte> out_;
  std::size_t start_ = 0;
};

enum class Severity : std::uint8_t { error, fatal };

struct ErrorFields {
  Severity severity = Severity::error;
  std::string_view code;
  std::string_view message;
  std::string_view detail;  // omitted when empty
  std::string_view hint;    // omitted when empty
  int position = 0;         // 1-based character position in the statement; omitted when 0
};

[[nodiscard]] std::vector<std::byte> error_response(const ErrorFields& fields);
// A message whose body is one NUL-terminated string (Query, CommandComplete).
[[nodiscard]] std::vector<std::byte> cstring_message(char type, std::string_view text);
// A simple-protocol Query carrying `sql`.
[[nodiscard]] inline std::vector<std::byte> query_message(std::string_view sql) {
  return cstring_message('Q', sql);
}
// Terminate: a backend told so ends without logging an unexpected end of file.
inline constexpr std::array<std::byte, 5> terminate_message{
    std::byte{'X'}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{4}};
// A NoticeResponse (severity NOTICE, SQLSTATE 00000) carrying `message`.
[[nodiscard]] std::vector<std::byte> notice_response(std::string_view message);

// A whole ErrorResponse or NoticeResponse `message` with its 'P' field (1-based character
// position) set to `position`, or left out when `position` is nullopt; every other field as
// PostgreSQL sent it, in its order. nullopt when the message is not well formed.
[[nodiscard]] std::optional<std::vector<std::byte>> with_position(Bytes message,
                                                                  std::optional<int> position);

}  // namespace seedproxy::protocol
