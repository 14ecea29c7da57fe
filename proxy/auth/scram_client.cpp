// SCRAM-SHA-256(-PLUS) client state machine for logging in upstream with a ClientKey or password.
#include "proxy/auth/scram_client.hpp"

#include <algorithm>
#include <charconv>
#include <climits>

#include "proxy/auth/base64.hpp"
#include "proxy/auth/channel_binding.hpp"
#include "proxy/auth/crypto.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "proxy/auth/scram_attributes.hpp"
#include "proxy/auth/scram_secret.hpp"

namespace seedproxy::auth {
namespace {

std::optional<std::string> check_message(std::string_view message, std::string_view what) {
  if (message.empty()) return "malformed SCRAM message (empty " + std::string(what) + ")";
  if (message.size() > max_scram_message_length || message.find('\0') != std::string_view::npos)
    return "malformed SCRAM message (" + std::string(what) + " too long or contains NUL)";
  return std::nullopt;
}

std::optional<std::uint32_t> parse_iterations(std::string_view text) {
  std::uint32_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || error != std::errc{} || end != text.data() + text.size() || value == 0 ||
      value > static_cast<std::uint32_t>(INT_MAX))
    return std::nullopt;
  return value;
}

// saslname: "=" and "," are written "=3D" and "=2C" (RFC 5802 §5.1).
std::string escape_username(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '=')
      out += "=3D";
    else if (c == ',')
      out += "=2C";
    else
      out += c;
  }
  return out;
}

}  // namespace

ScramCredential ScramCredential::from_keys(ScramKeys keys) {
  return ScramCredential(std::move(keys));
}

ScramCredential ScramCredential::from_password(SecretBytes password) {
  return ScramCredential(std::move(password));
}

ScramClient::ScramClient(ScramCredential credential, ScramClientOptions options)
    : credential_(std::move(credential)), options_(std::move(options)) {}

SaslStep ScramClient::fail(std::string message) {
  state_ = State::failed;
  return SaslStep::fail(AuthError{AuthErrorCode::upstream_login, std::move(message), {}, {}});
}

SaslStep ScramClient::start(std::span<const std::string> server_mechanisms) {
  if (state_ != State::initial) return fail("SASL exchange started twice");
  bool plus = false, plain = false;
  for (const auto& name : server_mechanisms) {
    if (name == scram_sha_256_plus) {
      // Offered without TLS, the server could not bind: TLS was stripped on the way (libpq).
      if (!options_.tls)
        return fail("server offered SCRAM-SHA-256-PLUS authentication over a non-SSL connection");
      plus = plus || options_.channel_binding != ChannelBindingPolicy::disable;
    } else if (name == scram_sha_256) {
      plain = true;
    }
  }
  if (!plus && !plain)
    return fail("none of the server's SASL authentication mechanisms are supported");
  if (options_.channel_binding == ChannelBindingPolicy::require && !plus)
    return fail(
        "channel binding is required, but server did not offer an authentication method that "
        "supports channel binding");
  if (plus && options_.server_end_point_hash.empty())
    return fail(
        "cannot use SCRAM-SHA-256-PLUS: no tls-server-end-point hash of the server's certificate "
        "(its signature algorithm names no single hash); set channel binding to disable");

  client_nonce_ = options_.client_nonce;
  if (client_nonce_.empty()) {
    std::array<std::byte, scram_raw_nonce_size> raw{};
    if (!fill_random(raw)) return fail("could not generate nonce");
    client_nonce_ = base64_encode(raw);
  }
  if (!is_scram_printable(client_nonce_)) return fail("invalid client nonce");
  mechanism_ = std::string(plus ? scram_sha_256_plus : scram_sha_256);
  std::string gs2_header;
  if (plus) {
    cbind_flag_ = 'p';
    gs2_header = gs2_header_plus;
  } else {
    // `y`: this client could bind but the server does not offer it; the server checks that.
    cbind_flag_ =
        options_.tls && options_.channel_binding != ChannelBindingPolicy::disable ? 'y' : 'n';
    gs2_header = std::string(1, cbind_flag_) + ",,";
  }
  client_first_bare_ = "n=" + escape_username(options_.username) + ",r=" + client_nonce_;
  state_ = State::awaiting_server_first;
  return SaslStep::proceed(gs2_header + client_first_bare_);
}

std::optional<std::string> ScramClient::derive_keys(const std::vector<std::byte>& salt,
                                                    std::uint32_t iterations) {
  if (const auto* keys = std::get_if<ScramKeys>(&credential_.value_)) {
    if (keys->salt != salt || keys->iterations != iterations)
      return "the server's SCRAM salt or iteration count differs from the secret the proxy "
             "verified the client against (was the password changed, or does the secret come "
             "from another server?)";
    client_key_ = keys->client_key;
    server_key_ = keys->server_key;
    return std::nullopt;
  }
  const auto& password = std::get<SecretBytes>(credential_.value_);
  switch (check_password_prep(password.text())) {
    case PasswordPrep::usable:
      break;
    case PasswordPrep::too_long:
      return "password too long for SCRAM";
    case PasswordPrep::needs_saslprep:
      return "password has non-ASCII characters that need SASLprep normalization, which the "
             "proxy does not implement; store a SCRAM secret instead";
  }
  if (iterations > max_derivation_iterations)
    return "the server asks for " + std::to_string(iterations) +
           " SCRAM iterations, more than the proxy derives (" +
           std::to_string(max_derivation_iterations) + ")";
  const SecretKey salted = salted_password(password.text(), salt, iterations);
  client_key_ = client_key_from(salted);
  server_key_ = server_key_from(salted);
  // The keys are all this exchange needs from now on; the password copy goes now.
  credential_.value_ = ScramKeys{};
  return std::nullopt;
}

std::string ScramClient::channel_binding_attribute() const {
  if (cbind_flag_ == 'p') return "c=" + channel_binding_value(options_.server_end_point_hash);
  return cbind_flag_ == 'y' ? "c=eSws" : "c=biws";  // base64 of "y,," and "n,,"
}

SaslStep ScramClient::on_server_first(std::string_view message) {
  if (state_ != State::awaiting_server_first) return fail("unexpected SASLContinue message");
  if (auto error = check_message(message, "server-first-message")) return fail(std::move(*error));
  AttributeReader reader(message);
  std::string detail;
  const auto nonce = reader.read('r', detail);
  if (!nonce) return fail("malformed SCRAM message (" + detail + ")");
  // The server must extend our nonce with its own.
  if (nonce->size() <= client_nonce_.size() || !nonce->starts_with(client_nonce_) ||
      !is_scram_printable(*nonce))
    return fail("invalid SCRAM response (nonce mismatch)");
  const auto salt_text = reader.read('s', detail);
  if (!salt_text) return fail("malformed SCRAM message (" + detail + ")");
  const auto salt = base64_decode(*salt_text);
  if (!salt || salt->empty() || salt->size() > max_scram_salt_size)
    return fail("malformed SCRAM message (invalid salt)");
  const auto iterations_text = reader.read('i', detail);
  if (!iterations_text) return fail("malformed SCRAM message (" + detail + ")");
  const auto iterations = parse_iterations(*iterations_text);
  if (!iterations) return fail("malformed SCRAM message (invalid iteration count)");
  // RFC 5802 allows extensions here; PostgreSQL sends none, and libpq calls any garbage.
  if (!reader.at_end())
    return fail("malformed SCRAM message (garbage at end of server-first-message)");
  if (auto error = derive_keys(*salt, *iterations)) return fail(std::move(*error));

  const std::string without_proof = channel_binding_attribute() + ",r=" + std::string(*nonce);
  auth_message_ = auth_message(client_first_bare_, message, without_proof);
  const SecretKey proof =
      xor_keys(client_key_, client_signature(stored_key_from(client_key_), auth_message_));
  state_ = State::awaiting_server_final;
  return SaslStep::proceed(without_proof + ",p=" + base64_encode(proof.bytes()));
}

SaslStep ScramClient::on_server_final(std::string_view message) {
  if (state_ != State::awaiting_server_final) return fail("unexpected SASLFinal message");
  if (auto error = check_message(message, "server-final-message")) return fail(std::move(*error));
  AttributeReader reader(message);
  std::string detail;
  if (reader.peek() == 'e') {
    const auto server_error = reader.read('e', detail);
    return fail("error received from server in SCRAM exchange: " +
                sanitize_str(server_error.value_or("")));
  }
  const auto signature_text = reader.read('v', detail);
  if (!signature_text) return fail("malformed SCRAM message (" + detail + ")");
  if (!reader.at_end())
    return fail("malformed SCRAM message (garbage at end of server-final-message)");
  SecretKey signature;
  if (!base64_decode_key(*signature_text, signature))
    return fail("malformed SCRAM message (invalid server signature)");
  if (server_key_ && !(server_signature(*server_key_, auth_message_) == signature))
    return fail("incorrect server signature");
  state_ = State::finished;
  return SaslStep::succeed({});
}

}  // namespace seedproxy::auth
