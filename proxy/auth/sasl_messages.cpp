// Reading and writing the bodies of authentication requests and answers.
#include "proxy/auth/sasl_messages.hpp"

#include <algorithm>

#include "proxy/auth/scram_attributes.hpp"

namespace seedproxy::auth {
namespace {

std::uint32_t read_u32(ByteSpan bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i)
    value = (value << 8) | std::to_integer<std::uint32_t>(bytes[at + i]);
  return value;
}

void put_u32(std::vector<std::byte>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::byte>(value >> shift));
}

void put_text(std::vector<std::byte>& out, std::string_view text) {
  const auto bytes = as_bytes(text);
  out.insert(out.end(), bytes.begin(), bytes.end());
}

std::vector<std::byte> request_body(AuthRequestCode code, std::string_view data) {
  std::vector<std::byte> out;
  out.reserve(4 + data.size());
  put_u32(out, static_cast<std::uint32_t>(code));
  put_text(out, data);
  return out;
}

// A NUL-terminated string at `at` of at most `limit` bytes; advances past the NUL.
std::optional<std::string_view> read_cstring(ByteSpan bytes, std::size_t& at, std::size_t limit) {
  const auto begin = bytes.begin() + static_cast<std::ptrdiff_t>(at);
  const auto nul = std::find(begin, bytes.end(), std::byte{0});
  if (nul == bytes.end() || static_cast<std::size_t>(nul - begin) > limit) return std::nullopt;
  std::string_view text(reinterpret_cast<const char*>(bytes.data() + at),
                        static_cast<std::size_t>(nul - begin));
  at += text.size() + 1;
  return text;
}

std::optional<std::vector<std::string>> read_mechanisms(ByteSpan body, std::string& error) {
  std::vector<std::string> mechanisms;
  std::size_t at = 4;
  for (;;) {
    const auto name = read_cstring(body, at, max_mechanism_length);
    if (!name) {
      error = "malformed AuthenticationSASL message: unterminated or overlong mechanism name";
      return std::nullopt;
    }
    if (name->empty()) break;
    if (mechanisms.size() == max_mechanisms) {
      error = "malformed AuthenticationSASL message: too many mechanisms";
      return std::nullopt;
    }
    mechanisms.emplace_back(*name);
  }
  if (at != body.size() || mechanisms.empty()) {
    error = "malformed AuthenticationSASL message";
    return std::nullopt;
  }
  return mechanisms;
}

std::optional<std::string> bounded_text(ByteSpan bytes, std::string_view what, std::string& error) {
  if (bytes.size() > max_scram_message_length) {
    error = std::string(what) + " is longer than " + std::to_string(max_scram_message_length) +
            " bytes";
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

std::optional<AuthRequest> parse_auth_request(ByteSpan body, std::string& error) {
  if (body.size() < 4) {
    error = "malformed authentication request: shorter than its code";
    return std::nullopt;
  }
  AuthRequest request;
  const auto code = read_u32(body, 0);
  const auto rest = body.subspan(4);
  switch (code) {
    case static_cast<std::uint32_t>(AuthRequestCode::ok):
    case static_cast<std::uint32_t>(AuthRequestCode::cleartext_password):
      if (!rest.empty()) break;
      request.code = static_cast<AuthRequestCode>(code);
      return request;
    case static_cast<std::uint32_t>(AuthRequestCode::md5_password):
      if (rest.size() != request.salt.size()) break;
      request.code = AuthRequestCode::md5_password;
      std::copy(rest.begin(), rest.end(), request.salt.begin());
      return request;
    case static_cast<std::uint32_t>(AuthRequestCode::sasl): {
      auto mechanisms = read_mechanisms(body, error);
      if (!mechanisms) return std::nullopt;
      request.code = AuthRequestCode::sasl;
      request.mechanisms = std::move(*mechanisms);
      return request;
    }
    case static_cast<std::uint32_t>(AuthRequestCode::sasl_continue):
    case static_cast<std::uint32_t>(AuthRequestCode::sasl_final): {
      auto data = bounded_text(rest, "SASL data", error);
      if (!data) return std::nullopt;
      request.code = static_cast<AuthRequestCode>(code);
      request.data = std::move(*data);
      return request;
    }
    default:
      error = "unsupported authentication request " + std::to_string(code);
      return std::nullopt;
  }
  error = "malformed authentication request " + std::to_string(code) + ": wrong length";
  return std::nullopt;
}

std::vector<std::byte> auth_ok_body() { return request_body(AuthRequestCode::ok, {}); }

std::vector<std::byte> auth_md5_body(const Md5Salt& salt) {
  auto out = request_body(AuthRequestCode::md5_password, {});
  out.insert(out.end(), salt.begin(), salt.end());
  return out;
}

std::vector<std::byte> auth_sasl_body(std::span<const std::string_view> mechanisms) {
  auto out = request_body(AuthRequestCode::sasl, {});
  for (const auto name : mechanisms) {
    put_text(out, name);
    out.push_back(std::byte{0});
  }
  out.push_back(std::byte{0});
  return out;
}

std::vector<std::byte> auth_sasl_continue_body(std::string_view data) {
  return request_body(AuthRequestCode::sasl_continue, data);
}

std::vector<std::byte> auth_sasl_final_body(std::string_view data) {
  return request_body(AuthRequestCode::sasl_final, data);
}

std::optional<SaslInitialResponse> parse_sasl_initial_response(ByteSpan body, std::string& error) {
  std::size_t at = 0;
  const auto mechanism = read_cstring(body, at, max_mechanism_length);
  if (!mechanism || body.size() - at < 4) {
    error = "invalid SASLInitialResponse message: no mechanism name or length";
    return std::nullopt;
  }
  SaslInitialResponse out{std::string(*mechanism), std::nullopt};
  const auto length = read_u32(body, at);
  at += 4;
  if (length == 0xffffffffu) {  // -1: no initial response
    if (at == body.size()) return out;
  } else if (length == body.size() - at) {
    auto data = bounded_text(body.subspan(at), "SASL initial response", error);
    if (!data) return std::nullopt;
    out.data = std::move(*data);
    return out;
  }
  error = "invalid SASLInitialResponse message: length does not match the message";
  return std::nullopt;
}

std::vector<std::byte> sasl_initial_response_body(std::string_view mechanism,
                                                  std::string_view data) {
  std::vector<std::byte> out;
  put_text(out, mechanism);
  out.push_back(std::byte{0});
  put_u32(out, static_cast<std::uint32_t>(data.size()));
  put_text(out, data);
  return out;
}

std::optional<std::string> parse_sasl_response(ByteSpan body, std::string& error) {
  return bounded_text(body, "SASL response", error);
}

std::optional<std::string_view> parse_password_message(ByteSpan body, std::string& error) {
  std::size_t at = 0;
  const auto text = read_cstring(body, at, 1024);
  if (!text || at != body.size()) {
    error = "invalid password packet size";
    return std::nullopt;
  }
  return text;
}

std::vector<std::byte> password_message_body(std::string_view password) {
  std::vector<std::byte> out;
  put_text(out, password);
  out.push_back(std::byte{0});
  return out;
}

}  // namespace seedproxy::auth
