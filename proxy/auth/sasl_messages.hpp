// Bodies of the authentication messages (after the type byte and length word): the 'R'
// requests a server sends, and the SASLInitialResponse, SASLResponse and PasswordMessage ('p')
// answers. Pure bytes in and out; the session frames them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

inline constexpr std::string_view scram_sha_256 = "SCRAM-SHA-256";
inline constexpr std::string_view scram_sha_256_plus = "SCRAM-SHA-256-PLUS";
// RFC 4422 limits mechanism names to 20 characters; a server lists a handful.
inline constexpr std::size_t max_mechanism_length = 20;
inline constexpr std::size_t max_mechanisms = 16;

using Md5Salt = std::array<std::byte, 4>;

// The Int32 that opens every 'R' message body.
enum class AuthRequestCode : std::uint32_t {
  ok = 0,
  cleartext_password = 3,
  md5_password = 5,
  sasl = 10,
  sasl_continue = 11,
  sasl_final = 12,
};

// What a server asks for, as the client side of the proxy reads it.
struct AuthRequest {
  AuthRequestCode code = AuthRequestCode::ok;
  std::vector<std::string> mechanisms;  // sasl: in the server's order
  std::string data;                     // sasl_continue, sasl_final
  Md5Salt salt{};                       // md5_password
};

// Parses an 'R' body. Codes other than the ones above are refused (GSSAPI, SSPI, ...).
[[nodiscard]] std::optional<AuthRequest> parse_auth_request(ByteSpan body, std::string& error);

[[nodiscard]] std::vector<std::byte> auth_ok_body();
[[nodiscard]] std::vector<std::byte> auth_md5_body(const Md5Salt& salt);
[[nodiscard]] std::vector<std::byte> auth_sasl_body(std::span<const std::string_view> mechanisms);
[[nodiscard]] std::vector<std::byte> auth_sasl_continue_body(std::string_view data);
[[nodiscard]] std::vector<std::byte> auth_sasl_final_body(std::string_view data);

// SASLInitialResponse: the chosen mechanism and, unless the client sent -1, its first message.
struct SaslInitialResponse {
  std::string mechanism;
  std::optional<std::string> data;
};

[[nodiscard]] std::optional<SaslInitialResponse> parse_sasl_initial_response(ByteSpan body,
                                                                             std::string& error);
[[nodiscard]] std::vector<std::byte> sasl_initial_response_body(std::string_view mechanism,
                                                                std::string_view data);
// A SASLResponse body is the SCRAM message itself; bounded like every SCRAM message.
[[nodiscard]] std::optional<std::string> parse_sasl_response(ByteSpan body, std::string& error);

// PasswordMessage carrying a password or an md5 answer: one NUL-terminated string, nothing after.
[[nodiscard]] std::optional<std::string_view> parse_password_message(ByteSpan body,
                                                                     std::string& error);
[[nodiscard]] std::vector<std::byte> password_message_body(std::string_view password);

}  // namespace seedproxy::auth
