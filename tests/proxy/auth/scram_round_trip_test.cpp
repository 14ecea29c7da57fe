// The proxy's SCRAM server against its SCRAM client through the wire bodies: passwords, secrets
// written by PostgreSQL, channel binding, the downgrade check, and the relay of a ClientKey.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/auth/crypto.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "proxy/auth/scram_client.hpp"
#include "proxy/auth/scram_server.hpp"
#include "proxy/auth/stored_secret.hpp"
#include "tests/proxy/auth/auth_fixtures.hpp"

using namespace seedproxy::auth;
namespace pg = seedproxy::test::postgres15;

namespace {

struct Login {
  SaslStep server;  // the server's last step
  SaslStep client;  // the client's last step
};

// One login, every message going through its wire body and back.
Login run_login(ScramServer& server, ScramClient& client) {
  std::string error;
  const auto mechanisms = server.mechanisms();
  const auto offer = parse_auth_request(auth_sasl_body(mechanisms), error);
  REQUIRE(offer);
  Login login;
  login.client = client.start(offer->mechanisms);
  if (login.client.outcome != SaslOutcome::continue_exchange) return login;
  const auto initial = parse_sasl_initial_response(
      sasl_initial_response_body(client.mechanism(), login.client.message), error);
  REQUIRE(initial);
  login.server = server.start(initial->mechanism, initial->data);
  if (login.server.outcome != SaslOutcome::continue_exchange) return login;
  const auto challenge = parse_auth_request(auth_sasl_continue_body(login.server.message), error);
  REQUIRE(challenge);
  login.client = client.on_server_first(challenge->data);
  if (login.client.outcome != SaslOutcome::continue_exchange) return login;
  const auto response = parse_sasl_response(as_bytes(login.client.message), error);
  REQUIRE(response);
  login.server = server.next(*response);
  if (login.server.outcome != SaslOutcome::success) return login;
  const auto final_request = parse_auth_request(auth_sasl_final_body(login.server.message), error);
  REQUIRE(final_request);
  login.client = client.on_server_final(final_request->data);
  return login;
}

ScramClient password_client(std::string_view password, ScramClientOptions options = {}) {
  return ScramClient(ScramCredential::from_password(SecretBytes(password)), std::move(options));
}

std::vector<std::byte> random_salt() {
  std::vector<std::byte> salt(16);
  REQUIRE(fill_random(salt));
  return salt;
}

}  // namespace

TEST_CASE("a password client logs in to a server holding the secret, with random nonces") {
  auto secret = build_scram_secret("correct horse", random_salt(), 4096);
  REQUIRE(secret);
  ScramServer server("alice", *secret, {});
  auto client = password_client("correct horse");
  const auto login = run_login(server, client);
  CHECK(login.server.outcome == SaslOutcome::success);
  CHECK(login.client.outcome == SaslOutcome::success);
  CHECK(client.server_verified());

  ScramServer other("alice", *secret, {});
  auto wrong = password_client("correct horse!");
  const auto refused = run_login(other, wrong);
  CHECK(refused.server.outcome == SaslOutcome::failure);
  CHECK(refused.server.error.code == AuthErrorCode::invalid_password);
}

TEST_CASE("PostgreSQL 15's own secret: the client proves the password, the proxy gets the key") {
  const auto secret = parse_scram_secret(pg::scram_secret);
  REQUIRE(secret);
  ScramServer proxy(std::string(pg::scram_user), *secret, {});
  auto application = password_client(pg::scram_password);
  REQUIRE(run_login(proxy, application).client.outcome == SaslOutcome::success);
  const auto keys = proxy.upstream_keys();
  REQUIRE(keys);

  // The proxy now logs in to "the upstream" (a server holding the same secret) with the key.
  ScramServer upstream(std::string(pg::scram_user), *secret, {});
  ScramClient relay(ScramCredential::from_keys(*keys), {});
  const auto login = run_login(upstream, relay);
  CHECK(login.server.outcome == SaslOutcome::success);
  CHECK(login.client.outcome == SaslOutcome::success);
  CHECK(relay.server_verified());
}

TEST_CASE("SCRAM-SHA-256-PLUS: bound to the same certificate it passes, to another it fails") {
  auto secret = build_scram_secret("pw", random_salt(), 4096);
  REQUIRE(secret);
  const std::vector<std::byte> proxy_cert_hash(32, std::byte{1});
  ScramServerOptions server_options;
  server_options.channel_binding_hash = proxy_cert_hash;
  ScramClientOptions client_options;
  client_options.tls = true;
  client_options.server_end_point_hash = proxy_cert_hash;

  ScramServer server("bob", *secret, server_options);
  auto client = password_client("pw", client_options);
  const auto login = run_login(server, client);
  CHECK(client.mechanism() == scram_sha_256_plus);
  CHECK(login.client.outcome == SaslOutcome::success);

  // A client that sees another certificate (a TLS-terminating middlebox) binds to that one.
  client_options.server_end_point_hash = std::vector<std::byte>(32, std::byte{2});
  ScramServer server2("bob", *secret, server_options);
  auto fooled = password_client("pw", client_options);
  const auto refused = run_login(server2, fooled);
  CHECK(refused.server.outcome == SaslOutcome::failure);
  CHECK(refused.server.error.code == AuthErrorCode::invalid_authorization);
  CHECK(refused.server.error.message == "SCRAM channel binding check failed");
  CHECK(sqlstate(refused.server.error.code) == "28000");
}

TEST_CASE("a middlebox that hides PLUS from a TLS client is caught by the y flag") {
  auto secret = build_scram_secret("pw", random_salt(), 4096);
  REQUIRE(secret);
  ScramServerOptions server_options;
  server_options.channel_binding_hash = std::vector<std::byte>(32, std::byte{1});
  ScramServer server("carol", *secret, server_options);
  ScramClientOptions client_options;
  client_options.tls = true;
  client_options.server_end_point_hash = std::vector<std::byte>(32, std::byte{9});
  auto client = password_client("pw", client_options);
  // The middlebox rewrote AuthenticationSASL to offer SCRAM-SHA-256 only.
  const auto first = client.start(std::vector<std::string>{std::string(scram_sha_256)});
  REQUIRE(first.message.starts_with("y,,"));
  const auto step = server.start(client.mechanism(), first.message);
  CHECK(step.outcome == SaslOutcome::failure);
  CHECK(step.error.message == "SCRAM channel binding negotiation error");
}

TEST_CASE("plain-text secret from a userlist: clients are checked against a derived secret") {
  const auto nonce = seedproxy::test::test_mock_nonce();
  auto secret = scram_secret_for_password("from userlist", "dave", nonce);
  REQUIRE(secret);
  ScramServer server("dave", *secret, {});
  auto client = password_client("from userlist");
  CHECK(run_login(server, client).server.outcome == SaslOutcome::success);
}
