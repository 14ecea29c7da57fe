// SCRAM-SHA-256(-PLUS) server state machine: checks each client message the way PostgreSQL's
// auth-scram.c does, verifies the proof, and keeps the ClientKey the proof reveals.
#include "proxy/auth/scram_server.hpp"

#include "proxy/auth/base64.hpp"
#include "proxy/auth/channel_binding.hpp"
#include "proxy/auth/crypto.hpp"
#include "proxy/auth/sasl_messages.hpp"

namespace seedproxy::auth {
namespace {

AuthError error_with(AuthErrorCode code, std::string message, std::string detail = {}) {
  return AuthError{code, std::move(message), std::move(detail), {}};
}

AuthError malformed(std::string detail) {
  return error_with(AuthErrorCode::protocol_violation, "malformed SCRAM message",
                    std::move(detail));
}

// What every SCRAM message must satisfy before its attributes are read.
std::optional<AuthError> check_message(std::string_view message) {
  if (message.empty()) return malformed("The message is empty.");
  if (message.size() > max_scram_message_length) return malformed("The message is too long.");
  if (message.find('\0') != std::string_view::npos)
    return malformed("Message length does not match input length.");
  return std::nullopt;
}

std::optional<std::string> random_nonce() {
  std::array<std::byte, scram_raw_nonce_size> raw{};
  if (!fill_random(raw)) return std::nullopt;
  return base64_encode(raw);
}

AuthError comma_expected(char found) {
  return malformed("Comma expected, but found character \"" + sanitize_char(found) + "\".");
}

const char* const plus_without_binding =
    "The client selected SCRAM-SHA-256-PLUS, but the SCRAM message does not include channel "
    "binding data.";

}  // namespace

ScramServer::ScramServer(std::string user, ScramSecret secret, ScramServerOptions options)
    : user_(std::move(user)), secret_(std::move(secret)), options_(std::move(options)) {}

ScramServer ScramServer::doomed(std::string user, const SecretKey& mock_nonce,
                                std::string log_reason, ScramServerOptions options,
                                std::uint32_t mock_iterations) {
  auto secret = mock_scram_secret(user, mock_nonce, mock_iterations);
  ScramServer server(std::move(user), std::move(secret), std::move(options));
  server.doomed_ = true;
  server.doomed_reason_ = std::move(log_reason);
  return server;
}

std::vector<std::string_view> ScramServer::mechanisms() const {
  if (plus_offered()) return {scram_sha_256_plus, scram_sha_256};
  return {scram_sha_256};
}

SaslStep ScramServer::fail(AuthError error) {
  state_ = State::failed;
  client_key_.reset();
  return SaslStep::fail(std::move(error));
}

SaslStep ScramServer::start(std::string_view mechanism, std::optional<std::string_view> data) {
  if (state_ != State::initial)
    return fail(error_with(AuthErrorCode::protocol_violation,
                           "unexpected SASLInitialResponse: the SASL exchange has already begun"));
  if (mechanism == scram_sha_256_plus && plus_offered()) {
    binding_ = true;
  } else if (mechanism == scram_sha_256) {
    binding_ = false;
  } else {
    return fail(error_with(AuthErrorCode::protocol_violation,
                           "client selected an invalid SASL authentication mechanism"));
  }
  if (!data) {
    state_ = State::awaiting_client_first;
    return SaslStep::proceed({});
  }
  return on_client_first(*data);
}

SaslStep ScramServer::next(std::string_view data) {
  switch (state_) {
    case State::awaiting_client_first:
      return on_client_first(data);
    case State::awaiting_client_final:
      return on_client_final(data);
    case State::initial:
      return fail(error_with(AuthErrorCode::protocol_violation,
                             "unexpected SASLResponse before SASLInitialResponse"));
    case State::authenticated:
    case State::failed:
      break;
  }
  return fail(error_with(AuthErrorCode::protocol_violation,
                         "unexpected SASLResponse: the SASL exchange is over"));
}

std::optional<AuthError> ScramServer::read_gs2_header(AttributeReader& reader) {
  std::string detail;
  cbind_flag_ = reader.peek();
  switch (cbind_flag_) {
    case 'n':
    case 'y':
      if (binding_) return malformed(plus_without_binding);
      if (cbind_flag_ == 'y' && plus_offered())
        return error_with(AuthErrorCode::invalid_authorization,
                          "SCRAM channel binding negotiation error",
                          "The client supports SCRAM channel binding but thinks the server does "
                          "not.  However, this server does support channel binding.");
      reader.skip(1);
      if (reader.peek() != ',') return comma_expected(reader.peek());
      reader.skip(1);
      break;
    case 'p': {
      if (!binding_)
        return malformed(
            "The client selected SCRAM-SHA-256 without channel binding, but the SCRAM message "
            "includes channel binding data.");
      const auto type = reader.read('p', detail);
      if (!type) return malformed(detail);
      if (*type != tls_server_end_point)
        return error_with(AuthErrorCode::protocol_violation,
                          "unsupported SCRAM channel-binding type \"" + sanitize_str(*type) + "\"");
      break;
    }
    default:
      return malformed("Unexpected channel-binding flag \"" + sanitize_char(cbind_flag_) + "\".");
  }
  if (reader.peek() == 'a')
    return error_with(AuthErrorCode::feature_not_supported,
                      "client uses authorization identity, but it is not supported");
  if (reader.peek() != ',')
    return malformed("Unexpected attribute \"" + sanitize_char(reader.peek()) +
                     "\" in client-first-message.");
  reader.skip(1);
  return std::nullopt;
}

SaslStep ScramServer::on_client_first(std::string_view message) {
  if (auto error = check_message(message)) return fail(std::move(*error));
  AttributeReader reader(message);
  if (auto error = read_gs2_header(reader)) return fail(std::move(*error));
  client_first_bare_ = std::string(reader.rest());
  if (reader.peek() == 'm')
    return fail(error_with(AuthErrorCode::feature_not_supported,
                           "client requires an unsupported SCRAM extension"));
  std::string detail;
  // The username attribute is ignored: the startup packet's user is the one authenticated.
  const auto ignored_user = reader.read('n', detail);
  const auto client_nonce = ignored_user ? reader.read('r', detail) : std::nullopt;
  if (!client_nonce) return fail(malformed(detail));
  if (!is_scram_printable(*client_nonce))
    return fail(
        error_with(AuthErrorCode::protocol_violation, "non-printable characters in SCRAM nonce"));
  while (!reader.at_end())
    if (!reader.read_any(detail)) return fail(malformed(detail));

  std::string server_nonce = options_.server_nonce;
  if (server_nonce.empty()) {
    auto generated = random_nonce();
    if (!generated)
      return fail(error_with(AuthErrorCode::internal_error, "could not generate random nonce"));
    server_nonce = std::move(*generated);
  }
  nonce_ = std::string(*client_nonce) + server_nonce;
  server_first_ =
      "r=" + nonce_ + ",s=" + secret_.salt_base64 + ",i=" + std::to_string(secret_.iterations);
  state_ = State::awaiting_client_final;
  return SaslStep::proceed(server_first_);
}

std::optional<AuthError> ScramServer::check_channel_binding(std::string_view value) const {
  if (binding_) {
    // Not secret: both sides know the certificate. A mismatch means the client bound to another
    // certificate than the one it is talking to (a TLS-terminating middlebox, or an attack).
    if (value != channel_binding_value(options_.channel_binding_hash))
      return error_with(AuthErrorCode::invalid_authorization, "SCRAM channel binding check failed");
    return std::nullopt;
  }
  // Without binding the attribute is base64 of the gs2 header, repeated: "n,," or "y,,".
  if (!(value == "biws" && cbind_flag_ == 'n') && !(value == "eSws" && cbind_flag_ == 'y'))
    return error_with(AuthErrorCode::protocol_violation,
                      "unexpected SCRAM channel-binding attribute in client-final-message");
  return std::nullopt;
}

SaslStep ScramServer::on_client_final(std::string_view message) {
  if (auto error = check_message(message)) return fail(std::move(*error));
  AttributeReader reader(message);
  std::string detail;
  const auto binding = reader.read('c', detail);
  if (!binding) return fail(malformed(detail));
  if (auto error = check_channel_binding(*binding)) return fail(std::move(*error));
  const auto final_nonce = reader.read('r', detail);
  if (!final_nonce) return fail(malformed(detail));
  // Optional extensions may precede the proof; they are skipped.
  std::size_t proof_at = 0;
  std::optional<AttributeReader::Attribute> attribute;
  do {
    proof_at = reader.position();
    attribute = reader.read_any(detail);
    if (!attribute) return fail(malformed(detail));
  } while (attribute->name != 'p');
  SecretKey proof;
  if (!base64_decode_key(attribute->value, proof))
    return fail(malformed("Malformed proof in client-final-message."));
  if (!reader.at_end()) return fail(malformed("Garbage found at the end of client-final-message."));
  if (*final_nonce != nonce_)
    return fail(error_with(AuthErrorCode::protocol_violation, "invalid SCRAM response",
                           "Nonce does not match."));
  // proof_at >= 4 here ("c=,r=" came first); the comma before "p=" is not part of the message.
  return verify_proof(proof, message.substr(0, proof_at - 1));
}

SaslStep ScramServer::verify_proof(const SecretKey& proof,
                                   std::string_view client_final_without_proof) {
  const auto message = auth_message(client_first_bare_, server_first_, client_final_without_proof);
  // The proof is checked even when the exchange is doomed, so that an unknown user costs the
  // same work as a known one.
  auto client_key = recover_client_key(proof, secret_.stored_key, message);
  if (!client_key || doomed_)
    return fail(password_failed(
        user_, doomed_ ? doomed_reason_ : "The SCRAM proof does not match the secret."));
  client_key_ = std::move(client_key);
  state_ = State::authenticated;
  const SecretKey signature = server_signature(secret_.server_key, message);
  return SaslStep::succeed("v=" + base64_encode(signature.bytes()));
}

std::optional<ScramKeys> ScramServer::upstream_keys() const {
  if (state_ != State::authenticated || !client_key_) return std::nullopt;
  return ScramKeys{*client_key_, secret_.server_key, secret_.salt, secret_.iterations};
}

}  // namespace seedproxy::auth
