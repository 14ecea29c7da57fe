// Answering PostgreSQL's authentication requests with the proxy's credential for the client:
// SCRAM-SHA-256(-PLUS) with the recovered ClientKey, md5 with the stored hash, nothing for trust.
#include "proxy/session/upstream_login.hpp"

#include <openssl/x509.h>

#include "common/sqlstate.hpp"
#include "proxy/auth/channel_binding.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "proxy/io/message_reader.hpp"
#include "proxy/tls/tls_contexts.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
constexpr std::uint32_t max_login_message = 65536;

UpstreamLogin failure(std::string message, std::string_view code = sqlstate::unable_to_connect) {
  UpstreamLogin out;
  out.reason = "upstream login failed: " + message;
  out.code = code;
  out.message = "seedproxy could not log in to the server: " + message;
  return out;
}

asio::awaitable<bool> send(Stream& server, char type, std::span<const std::byte> body) {
  protocol::PacketWriter writer;
  writer.begin(type);
  writer.put_bytes(body);
  writer.finish();
  co_return !co_await server.write_all(writer.bytes());
}

std::vector<std::byte> peer_end_point_hash(const Stream& server) {
  return server.tls() ? certificate_end_point_hash(SSL_get0_peer_certificate(server.ssl()))
                      : std::vector<std::byte>{};
}

// One SCRAM step's answer to the server; a failure, or nullopt once sent (or finished).
asio::awaitable<std::optional<UpstreamLogin>> answer(Stream& server, const auth::SaslStep& step,
                                                     std::string_view initial_mechanism) {
  if (step.outcome == auth::SaslOutcome::failure) co_return failure(step.error.message);
  if (step.outcome == auth::SaslOutcome::success) co_return std::nullopt;
  std::vector<std::byte> initial;
  if (!initial_mechanism.empty())
    initial = auth::sasl_initial_response_body(initial_mechanism, step.message);
  const auth::ByteSpan body = initial_mechanism.empty() ? auth::as_bytes(step.message) : initial;
  const bool sent = co_await send(server, 'p', body);
  if (!sent) co_return failure("the server closed the connection", sqlstate::connection_failure);
  co_return std::nullopt;
}

}  // namespace

asio::awaitable<UpstreamLogin> login_upstream(Stream& server, UpstreamCredential credential,
                                              const UpstreamLoginOptions& options) {
  std::optional<auth::ScramClient> scram;
  for (;;) {
    auto message = co_await read_message(server, max_login_message);
    if (message.ec || message.error != protocol::FrameError::none)
      co_return failure("the server closed the connection", sqlstate::connection_failure);
    if (message.type == 'E') {
      UpstreamLogin out;
      out.reason = "upstream refused the login";
      out.server_error = std::move(message.bytes);
      co_return out;
    }
    if (message.type == 'N' || message.type == 'v') continue;  // notices, protocol negotiation
    std::string error;
    const auto request =
        message.type == 'R' ? auth::parse_auth_request(message.body(), error) : std::nullopt;
    if (!request)
      co_return failure(message.type == 'R'
                            ? "unsupported authentication request: " + error
                            : "unexpected message type '" + std::string(1, message.type) + "'",
                        sqlstate::protocol_violation);
    using Code = auth::AuthRequestCode;
    switch (request->code) {
      case Code::ok: {
        if (scram && !scram->finished())
          co_return failure("the server skipped the end of the SCRAM exchange");
        if (scram && !scram->server_verified() && !options.server_identity_verified)
          co_return failure(
              "the server's SCRAM signature could not be checked and "
              "server_tls is not verify-full");
        UpstreamLogin out;
        out.ok = true;
        out.mechanism = scram ? scram->mechanism() : "trust";
        out.auth_ok = std::move(message.bytes);
        co_return out;
      }
      case Code::md5_password: {
        if (!credential.md5)
          co_return failure(
              "the server asks for md5, and the proxy holds no md5 secret for this role");
        const auto response = auth::md5_response(*credential.md5, request->salt);
        const auto body = auth::password_message_body(response.text());
        const bool sent = co_await send(server, 'p', body);
        if (!sent)
          co_return failure("the server closed the connection", sqlstate::connection_failure);
        break;
      }
      case Code::sasl: {
        if (!credential.scram)
          co_return failure(
              "the server asks for SCRAM, and the proxy holds no SCRAM key for this role");
        auth::ScramClientOptions client_options;
        client_options.tls = server.tls();
        client_options.server_end_point_hash = peer_end_point_hash(server);
        scram.emplace(std::move(*credential.scram), client_options);
        credential.scram.reset();
        const auto step = scram->start(request->mechanisms);
        const auto failed = co_await answer(server, step, scram->mechanism());
        if (failed) co_return *failed;
        break;
      }
      case Code::sasl_continue: {
        if (!scram)
          co_return failure("SASL continuation without SASL", sqlstate::protocol_violation);
        const auto step = scram->on_server_first(request->data);
        const auto failed = co_await answer(server, step, {});
        if (failed) co_return *failed;
        break;
      }
      case Code::sasl_final: {
        if (!scram) co_return failure("SASL final without SASL", sqlstate::protocol_violation);
        const auto step = scram->on_server_final(request->data);
        const auto failed = co_await answer(server, step, {});
        if (failed) co_return *failed;
        break;
      }
      case Code::cleartext_password:
        co_return failure("the server asks for a plain-text password, which the proxy never holds");
    }
  }
}

}  // namespace seedproxy::proxy
