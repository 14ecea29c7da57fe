// Typed read-only views of the backend (server) messages the proxy reads: ErrorResponse and
// NoticeResponse fields, CommandComplete's tag, ReadyForQuery's status, BackendKeyData,
// ParameterStatus and the Authentication request code. Each takes a message body (after type byte
// and length word) and returns nullopt unless the body has the layout PostgreSQL sends; views point
// into the body.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {

// ErrorResponse ('E') and NoticeResponse ('N'): the fields the proxy reads, empty when absent.
// Fields it does not name are skipped; a repeated field keeps its last value.
struct ErrorNoticeView {
  std::string_view severity;  // 'S': localized ("ERROR", "FEHLER")
  std::string_view code;      // 'C': SQLSTATE
  std::string_view message;   // 'M'
  std::string_view detail;    // 'D'
  std::string_view hint;      // 'H'
  std::string_view position;  // 'P': 1-based character position in the statement, as text
};
// Nullopt when a field is unterminated or the closing NUL is missing or not the last byte.
[[nodiscard]] std::optional<ErrorNoticeView> read_error_notice(Bytes body) noexcept;

// CommandComplete ('C'): the command tag ("INSERT 0 1", "ALTER TABLE").
[[nodiscard]] std::optional<std::string_view> read_command_tag(Bytes body) noexcept;

// ReadyForQuery ('Z'): the transaction status.
enum class TransactionStatus : char { idle = 'I', in_transaction = 'T', failed = 'E' };
[[nodiscard]] std::optional<TransactionStatus> read_ready_for_query(Bytes body) noexcept;
// True when `received` (bytes read from a server, not necessarily from a message boundary) ends
// with a whole ReadyForQuery: after it the server sends nothing until the client speaks, apart from
// asynchronous messages and a FATAL error before it closes. May be fooled by a row that ends with
// the same six bytes; what relies on it must only lose time then, never bytes.
[[nodiscard]] bool ends_with_ready_for_query(Bytes received) noexcept;

// BackendKeyData ('K'): the backend's process id and its cancel key (4 bytes in protocol 3.0,
// up to 256 in 3.2).
struct BackendKeyView {
  std::uint32_t process_id = 0;
  Bytes secret;
};
[[nodiscard]] std::optional<BackendKeyView> read_backend_key(Bytes body) noexcept;

// ParameterStatus ('S'): a run-time parameter's name and its value ("in_hot_standby", "on").
struct ParameterStatusView {
  std::string_view name;
  std::string_view value;
};
[[nodiscard]] std::optional<ParameterStatusView> read_parameter_status(Bytes body) noexcept;

// Authentication ('R'): the request code and whatever follows it (salt, SASL data).
namespace authentication {
inline constexpr std::uint32_t ok = 0;
inline constexpr std::uint32_t kerberos_v5 = 2;
inline constexpr std::uint32_t cleartext_password = 3;
inline constexpr std::uint32_t md5_password = 5;
inline constexpr std::uint32_t scm_credential = 6;
inline constexpr std::uint32_t gss = 7;
inline constexpr std::uint32_t gss_continue = 8;
inline constexpr std::uint32_t sspi = 9;
inline constexpr std::uint32_t sasl = 10;
inline constexpr std::uint32_t sasl_continue = 11;
inline constexpr std::uint32_t sasl_final = 12;
}  // namespace authentication
struct AuthenticationView {
  std::uint32_t code = 0;
  Bytes data;
};
// Nullopt when the code is missing or a request of known layout does not have it (Ok, the
// password requests, GSS and SSPI carry nothing; MD5 a 4-byte salt; SASL a list of mechanisms).
[[nodiscard]] std::optional<AuthenticationView> read_authentication(Bytes body) noexcept;

}  // namespace seedproxy::protocol
