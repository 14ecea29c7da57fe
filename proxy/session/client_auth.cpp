// The proxy's side of a client's password exchange: which mechanism each kind of secret allows,
// the SCRAM and md5 conversations, and PostgreSQL's refusals (the same for a wrong password and
// an unknown role, with the same work done).
#include "proxy/session/client_auth.hpp"

#include "common/sqlstate.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "proxy/auth/scram_server.hpp"
#include "proxy/io/message_reader.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

// PostgreSQL caps authentication tokens at 64 KiB.
constexpr std::uint32_t max_auth_message = 65536;

std::vector<std::byte> framed(char type, std::span<const std::byte> body) {
  protocol::PacketWriter writer;
  writer.begin(type);
  writer.put_bytes(body);
  writer.finish();
  return writer.take();
}

ClientAuth refusal(const auth::AuthError& error) {
  ClientAuth out;
  out.code = auth::sqlstate(error.code);
  out.message = error.message;
  out.detail = error.detail;
  out.reason = "authentication failed: " + error.message +
               (error.log_detail.empty() ? "" : " (" + error.log_detail + ")");
  return out;
}

ClientAuth client_gone() {
  ClientAuth out;
  out.reason = "client closed the connection during authentication";
  return out;
}

ClientAuth violation(std::string what) {
  ClientAuth out;
  out.code = sqlstate::protocol_violation;
  out.message = what;
  out.reason = "protocol violation during authentication: " + what;
  return out;
}

// The body of the client's next PasswordMessage-shaped answer ('p'); a failure otherwise.
struct Answer {
  std::optional<ClientAuth> failed;
  std::vector<std::byte> body;
};
asio::awaitable<Answer> read_answer(Stream& client) {
  auto message = co_await read_message(client, max_auth_message);
  Answer out;
  if (message.ec) {
    out.failed = client_gone();
  } else if (message.error != protocol::FrameError::none) {
    out.failed = violation(std::string(describe(message.error)));
  } else if (message.type != 'p') {
    out.failed = violation("expected password response, got message type " +
                           std::to_string(static_cast<unsigned char>(message.type)));
  } else {
    out.body.assign(message.body().begin(), message.body().end());
  }
  co_return out;
}

asio::awaitable<ClientAuth> run_scram(Stream& client, auth::ScramServer server) {
  const auto mechanisms = server.mechanisms();
  const auto offer = framed('R', auth::auth_sasl_body(mechanisms));
  const auto offer_ec = co_await client.write_all(offer);
  if (offer_ec) co_return client_gone();
  auto answer = co_await read_answer(client);
  if (answer.failed) co_return std::move(*answer.failed);
  std::string error;
  const auto initial = auth::parse_sasl_initial_response(answer.body, error);
  if (!initial) co_return violation(error);
  std::string mechanism = initial->mechanism;
  auto step = server.start(initial->mechanism, initial->data);
  while (step.outcome == auth::SaslOutcome::continue_exchange) {
    const auto challenge = framed('R', auth::auth_sasl_continue_body(step.message));
    const auto challenge_ec = co_await client.write_all(challenge);
    if (challenge_ec) co_return client_gone();
    answer = co_await read_answer(client);
    if (answer.failed) co_return std::move(*answer.failed);
    const auto response = auth::parse_sasl_response(answer.body, error);
    if (!response) co_return violation(error);
    step = server.next(*response);
  }
  if (step.outcome == auth::SaslOutcome::failure) co_return refusal(step.error);
  const auto final_message = framed('R', auth::auth_sasl_final_body(step.message));
  const auto final_ec = co_await client.write_all(final_message);
  if (final_ec) co_return client_gone();
  ClientAuth out;
  out.ok = true;
  out.mechanism = std::move(mechanism);
  out.credential.scram = auth::ScramCredential::from_keys(*server.upstream_keys());
  co_return out;
}

asio::awaitable<ClientAuth> run_md5(Stream& client, const std::string& user,
                                    const auth::Md5Secret& secret) {
  auth::Md5Salt salt{};
  if (!auth::random_md5_salt(salt)) {
    ClientAuth out;
    out.code = sqlstate::internal_error;
    out.message = "could not generate random MD5 salt";
    out.reason = out.message;
    co_return out;
  }
  const auto request = framed('R', auth::auth_md5_body(salt));
  const auto request_ec = co_await client.write_all(request);
  if (request_ec) co_return client_gone();
  auto answer = co_await read_answer(client);
  if (answer.failed) co_return std::move(*answer.failed);
  std::string error;
  const auto response = auth::parse_password_message(answer.body, error);
  if (!response) co_return violation(error);
  if (!auth::verify_md5_response(secret, salt, *response))
    co_return refusal(auth::password_failed(user, "md5 answer does not match"));
  ClientAuth out;
  out.ok = true;
  out.mechanism = "md5";
  out.credential.md5 = secret;
  co_return out;
}

}  // namespace

asio::awaitable<ClientAuth> authenticate_client(Stream& client, const ClientAuthRequest& request,
                                                SecretLookup lookup) {
  if (request.trusted) {
    ClientAuth out;
    out.ok = true;
    out.mechanism = "trust";
    co_return out;
  }
  if (lookup.status == LookupStatus::failed) {
    ClientAuth out;
    out.code = sqlstate::unable_to_connect;
    out.message = "seedproxy could not read the role's password";
    // Why the proxy's own connection failed (unreachable, TLS refused): nothing about the role.
    out.detail = lookup.error;
    out.reason = "auth.query failed: " + lookup.error;
    co_return out;
  }
  auth::ScramServerOptions options;
  options.channel_binding_hash = request.end_point_hash;
  const auto& secret = lookup.secret;
  if (lookup.status == LookupStatus::found) {
    if (const auto* md5 = secret.md5()) co_return co_await run_md5(client, request.user, *md5);
    if (const auto* scram = secret.scram())
      co_return co_await run_scram(client, auth::ScramServer(request.user, *scram, options));
    if (const auto* password = secret.plain_text(); password && lookup.scram_for_password) {
      auto result = co_await run_scram(
          client, auth::ScramServer(request.user, *lookup.scram_for_password, options));
      if (result.ok) {
        // The upstream's own salt is unknown until it asks: log in with the password itself.
        result.credential.scram = auth::ScramCredential::from_password(*password);
        result.credential.md5 = auth::md5_secret_from_password(password->text(), request.user);
      }
      co_return result;
    }
  }
  const std::string why = lookup.status == LookupStatus::no_such_role
                              ? "Role \"" + request.user + "\" does not exist."
                              : "User \"" + request.user + "\" has no password assigned.";
  co_return co_await run_scram(
      client, auth::ScramServer::doomed(request.user, lookup.mock_nonce, why, options));
}

}  // namespace seedproxy::proxy
