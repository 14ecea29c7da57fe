// The SCRAM client state machine: RFC 7677's exchange, libpq's mechanism and gs2 choices, the
// checks on what the server sends, and logging in with a ClientKey instead of a password.
#include "proxy/auth/scram_client.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "proxy/auth/base64.hpp"
#include "proxy/auth/channel_binding.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "tests/proxy/auth/auth_fixtures.hpp"

using namespace seedproxy::auth;
namespace rfc = seedproxy::test::rfc7677;

namespace {

const std::vector<std::string> only_scram{std::string(scram_sha_256)};
const std::vector<std::string> both{std::string(scram_sha_256_plus), std::string(scram_sha_256)};
const std::vector<std::byte> upstream_hash(32, std::byte{0x42});

ScramClientOptions rfc_options() {
  ScramClientOptions options;
  options.username = "user";
  options.client_nonce = std::string(rfc::client_nonce);
  return options;
}

ScramKeys rfc_keys(bool with_server_key = true) {
  const auto secret = rfc::secret();
  ScramKeys keys;
  keys.client_key = seedproxy::test::key_of(rfc::client_key_base64);
  if (with_server_key) keys.server_key = secret.server_key;
  keys.salt = secret.salt;
  keys.iterations = secret.iterations;
  return keys;
}

ScramClient password_client(ScramClientOptions options = rfc_options()) {
  return ScramClient(ScramCredential::from_password(SecretBytes(rfc::password)), options);
}

}  // namespace

TEST_CASE("RFC 7677's exchange, byte for byte, from the password") {
  auto client = password_client();
  const auto first = client.start(only_scram);
  REQUIRE(first.outcome == SaslOutcome::continue_exchange);
  CHECK(client.mechanism() == scram_sha_256);
  CHECK(first.message == rfc::client_first);
  const auto final_message = client.on_server_first(rfc::server_first);
  REQUIRE(final_message.outcome == SaslOutcome::continue_exchange);
  CHECK(final_message.message == rfc::client_final);
  CHECK_FALSE(client.finished());
  const auto done = client.on_server_final(rfc::server_final);
  CHECK(done.outcome == SaslOutcome::success);
  CHECK(client.finished());
  CHECK(client.server_verified());
}

TEST_CASE("the same exchange from the ClientKey alone: identical proof, no password needed") {
  ScramClient client(ScramCredential::from_keys(rfc_keys()), rfc_options());
  REQUIRE(client.start(only_scram).message == rfc::client_first);
  CHECK(client.on_server_first(rfc::server_first).message == rfc::client_final);
  CHECK(client.on_server_final(rfc::server_final).outcome == SaslOutcome::success);
  CHECK(client.server_verified());
}

TEST_CASE("without a ServerKey the exchange completes but the server is not verified") {
  ScramClient client(ScramCredential::from_keys(rfc_keys(false)), rfc_options());
  (void)client.start(only_scram);
  (void)client.on_server_first(rfc::server_first);
  // Any well-formed signature is taken: nothing to check it against.
  CHECK(client.on_server_final("v=" + base64_encode(std::vector<std::byte>(32))).outcome ==
        SaslOutcome::success);
  CHECK(client.finished());
  CHECK_FALSE(client.server_verified());
}

TEST_CASE("a server whose salt or iteration count differ from the secret's is refused") {
  ScramClient salt_changed(ScramCredential::from_keys(rfc_keys()), rfc_options());
  (void)salt_changed.start(only_scram);
  const auto step = salt_changed.on_server_first(
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=AAAAAAAAAAAAAAAAAAAAAA==,i=4096");
  CHECK(step.outcome == SaslOutcome::failure);
  CHECK(step.error.code == AuthErrorCode::upstream_login);
  CHECK(step.error.message.find("salt or iteration count differs") != std::string::npos);

  ScramClient iterations_changed(ScramCredential::from_keys(rfc_keys()), rfc_options());
  (void)iterations_changed.start(only_scram);
  CHECK(iterations_changed
            .on_server_first("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                             "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4097")
            .outcome == SaslOutcome::failure);
}

TEST_CASE("a wrong server signature, or an error from the server, fails the login") {
  auto client = password_client();
  (void)client.start(only_scram);
  (void)client.on_server_first(rfc::server_first);
  auto bad = std::string(rfc::server_final);
  bad[5] = bad[5] == 'A' ? 'B' : 'A';
  const auto step = client.on_server_final(bad);
  CHECK(step.outcome == SaslOutcome::failure);
  CHECK(step.error.message == "incorrect server signature");
  CHECK_FALSE(client.finished());

  auto refused = password_client();
  (void)refused.start(only_scram);
  (void)refused.on_server_first(rfc::server_first);
  CHECK(refused.on_server_final("e=invalid-proof").error.message ==
        "error received from server in SCRAM exchange: invalid-proof");
}

TEST_CASE("mechanism and gs2 flag are chosen as libpq chooses them") {
  SUBCASE("plain TCP: SCRAM-SHA-256 with n; PLUS on offer means TLS was stripped") {
    ScramClientOptions options;
    options.client_nonce = "abc";
    auto client = password_client(options);
    CHECK(client.start(only_scram).message == "n,,n=,r=abc");
    const auto stripped = password_client(options).start(both);
    CHECK(stripped.outcome == SaslOutcome::failure);
    CHECK(stripped.error.message.find("over a non-SSL connection") != std::string::npos);
  }
  SUBCASE("TLS, server offers PLUS: bind with p=tls-server-end-point") {
    ScramClientOptions options;
    options.tls = true;
    options.server_end_point_hash = upstream_hash;
    options.client_nonce = "abc";
    auto client = password_client(options);
    CHECK(client.start(both).message == "p=tls-server-end-point,,n=,r=abc");
    CHECK(client.mechanism() == scram_sha_256_plus);
  }
  SUBCASE("TLS, server does not offer PLUS: y, so a stripped PLUS would be noticed") {
    ScramClientOptions options;
    options.tls = true;
    options.server_end_point_hash = upstream_hash;
    options.client_nonce = "abc";
    CHECK(password_client(options).start(only_scram).message == "y,,n=,r=abc");
  }
  SUBCASE("channel_binding=disable: n, even over TLS with PLUS on offer") {
    ScramClientOptions options;
    options.tls = true;
    options.channel_binding = ChannelBindingPolicy::disable;
    options.client_nonce = "abc";
    auto client = password_client(options);
    CHECK(client.start(both).message == "n,,n=,r=abc");
    CHECK(client.mechanism() == scram_sha_256);
  }
  SUBCASE("channel_binding=require without PLUS on offer fails") {
    ScramClientOptions options;
    options.tls = true;
    options.channel_binding = ChannelBindingPolicy::require;
    options.server_end_point_hash = upstream_hash;
    const auto step = password_client(options).start(only_scram);
    CHECK(step.outcome == SaslOutcome::failure);
    CHECK(step.error.message.find("channel binding is required") != std::string::npos);
  }
  SUBCASE("PLUS chosen but the certificate gives no hash: a clear failure") {
    ScramClientOptions options;
    options.tls = true;
    CHECK(password_client(options).start(both).outcome == SaslOutcome::failure);
  }
  SUBCASE("nothing we speak") {
    const std::vector<std::string> other{"SCRAM-SHA-1", "OAUTHBEARER"};
    CHECK(password_client().start(other).outcome == SaslOutcome::failure);
    CHECK(password_client().start({}).outcome == SaslOutcome::failure);
  }
}

TEST_CASE("the binding client's final message carries the upstream certificate's hash") {
  ScramClientOptions options;
  options.tls = true;
  options.server_end_point_hash = upstream_hash;
  options.client_nonce = "abc";
  auto client = password_client(options);
  (void)client.start(both);
  const auto step = client.on_server_first("r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
  REQUIRE(step.outcome == SaslOutcome::continue_exchange);
  CHECK(step.message.starts_with("c=" + channel_binding_value(upstream_hash) + ",r=abcdef,p="));
}

TEST_CASE("server-first-message is checked before any work is done") {
  const std::string nonce = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  for (const std::string& bad : {
           std::string(""),
           std::string("r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),
           std::string(
               "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"),  // no server part
           nonce + ",s=not base64,i=4096",
           nonce + ",s=,i=4096",
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-1",
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x",
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999",
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=extension",
           nonce + ",i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
           "m=mandatory," + nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
           nonce + ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=" + std::to_string(max_derivation_iterations + 1),
       }) {
    auto client = password_client();
    (void)client.start(only_scram);
    CHECK_MESSAGE(client.on_server_first(bad).outcome == SaslOutcome::failure, bad);
  }
}

TEST_CASE("every truncation of the server's messages is refused, never accepted") {
  const std::string first(rfc::server_first), final_message(rfc::server_final);
  for (std::size_t cut = 0; cut < first.size(); ++cut) {
    auto client = password_client();
    (void)client.start(only_scram);
    const auto step = client.on_server_first(first.substr(0, cut));
    // A cut inside the nonce's server part still parses structurally; the login then cannot
    // succeed because the final message's signature is for the full exchange.
    if (step.outcome == SaslOutcome::continue_exchange)
      CHECK(client.on_server_final(rfc::server_final).outcome == SaslOutcome::failure);
  }
  for (std::size_t cut = 0; cut < final_message.size(); ++cut) {
    auto client = password_client();
    (void)client.start(only_scram);
    (void)client.on_server_first(rfc::server_first);
    CHECK_MESSAGE(
        client.on_server_final(final_message.substr(0, cut)).outcome == SaslOutcome::failure, cut);
  }
}

TEST_CASE("out-of-order server messages are refused") {
  auto client = password_client();
  CHECK(client.on_server_first(rfc::server_first).outcome == SaslOutcome::failure);
  auto early = password_client();
  (void)early.start(only_scram);
  CHECK(early.on_server_final(rfc::server_final).outcome == SaslOutcome::failure);
  CHECK_FALSE(early.finished());
}

TEST_CASE("plain-text passwords that need SASLprep are refused rather than guessed") {
  ScramClient client(
      ScramCredential::from_password(SecretBytes(std::string_view("\xc3\xa9t\xc3\xa9"))),
      rfc_options());
  (void)client.start(only_scram);
  const auto step = client.on_server_first(rfc::server_first);
  CHECK(step.outcome == SaslOutcome::failure);
  CHECK(step.error.message.find("SASLprep") != std::string::npos);
}
