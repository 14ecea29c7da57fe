// Backend message views: each layout walked with a bounds-checked reader.
#include "proxy/wire/backend_views.hpp"

#include "proxy/wire/body_reader.hpp"

namespace seedproxy::protocol {

std::optional<ErrorNoticeView> read_error_notice(Bytes body) noexcept {
  ErrorNoticeView out;
  BodyReader reader(body);
  for (;;) {
    const auto field = reader.u8();
    if (!field) return std::nullopt;
    if (*field == 0) break;
    const auto value = reader.cstring();
    if (!value) return std::nullopt;
    switch (*field) {
      case 'S':
        out.severity = *value;
        break;
      case 'C':
        out.code = *value;
        break;
      case 'M':
        out.message = *value;
        break;
      case 'D':
        out.detail = *value;
        break;
      case 'H':
        out.hint = *value;
        break;
      case 'P':
        out.position = *value;
        break;
      default:
        break;
    }
  }
  if (!reader.at_end()) return std::nullopt;
  return out;
}

std::optional<std::string_view> read_command_tag(Bytes body) noexcept {
  BodyReader reader(body);
  const auto tag = reader.cstring();
  if (!tag || !reader.at_end()) return std::nullopt;
  return tag;
}

std::optional<TransactionStatus> read_ready_for_query(Bytes body) noexcept {
  BodyReader reader(body);
  const auto status = reader.u8();
  if (!status || !reader.at_end()) return std::nullopt;
  if (*status != 'I' && *status != 'T' && *status != 'E') return std::nullopt;
  return static_cast<TransactionStatus>(*status);
}

bool ends_with_ready_for_query(Bytes received) noexcept {
  constexpr std::size_t size = 6;  // 'Z', length 5, status
  if (received.size() < size) return false;
  const auto tail = received.last(size);
  const auto byte = [&](std::size_t i) { return static_cast<unsigned char>(tail[i]); };
  return byte(0) == 'Z' && byte(1) == 0 && byte(2) == 0 && byte(3) == 0 && byte(4) == 5 &&
         read_ready_for_query(tail.last(1)).has_value();
}

std::optional<BackendKeyView> read_backend_key(Bytes body) noexcept {
  BodyReader reader(body);
  const auto process_id = reader.u32();
  const Bytes secret = reader.rest();
  if (!process_id || secret.size() < min_cancel_key || secret.size() > max_cancel_key)
    return std::nullopt;
  return BackendKeyView{*process_id, secret};
}

std::optional<ParameterStatusView> read_parameter_status(Bytes body) noexcept {
  BodyReader reader(body);
  const auto name = reader.cstring();
  const auto value = reader.cstring();
  if (!name || !value || !reader.at_end()) return std::nullopt;
  return ParameterStatusView{*name, *value};
}

std::optional<AuthenticationView> read_authentication(Bytes body) noexcept {
  BodyReader reader(body);
  const auto code = reader.u32();
  if (!code) return std::nullopt;
  const Bytes data = reader.rest();
  switch (*code) {
    case authentication::ok:
    case authentication::kerberos_v5:
    case authentication::cleartext_password:
    case authentication::scm_credential:
    case authentication::gss:
    case authentication::sspi:
      if (!data.empty()) return std::nullopt;
      break;
    case authentication::md5_password:
      if (data.size() != 4) return std::nullopt;  // the salt
      break;
    case authentication::sasl: {
      // Mechanism names, each NUL-terminated, then an empty one.
      BodyReader mechanisms(data);
      for (;;) {
        const auto name = mechanisms.cstring();
        if (!name) return std::nullopt;
        if (name->empty()) break;
      }
      if (!mechanisms.at_end()) return std::nullopt;
      break;
    }
    default:
      break;  // GSS/SASL continuation data, or a code this proxy does not know: any bytes
  }
  return AuthenticationView{*code, data};
}

}  // namespace seedproxy::protocol
