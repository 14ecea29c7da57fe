// The SCRAM server state machine: RFC 7677's exchange, PostgreSQL's gs2 rules, refusals of
// malformed, truncated and random messages, and the mock path for unknown users.
#include "proxy/auth/scram_server.hpp"

#include <doctest/doctest.h>

#include <random>
#include <string>

#include "proxy/auth/base64.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "tests/proxy/auth/auth_fixtures.hpp"

using namespace seedproxy::auth;
namespace rfc = seedproxy::test::rfc7677;
using seedproxy::test::key_of;

namespace {

const std::vector<std::byte> some_certificate_hash(32, std::byte{0x5a});

ScramServer rfc_server(bool offer_plus = false) {
  ScramServerOptions options;
  options.server_nonce = std::string(rfc::server_nonce);
  if (offer_plus) options.channel_binding_hash = some_certificate_hash;
  return ScramServer("user", rfc::secret(), options);
}

void check_refused(const SaslStep& step, AuthErrorCode code, std::string_view message,
                   std::string_view detail_part = {}) {
  CHECK(step.outcome == SaslOutcome::failure);
  CHECK(step.error.code == code);
  CHECK(step.error.message == message);
  CHECK_MESSAGE(step.error.detail.find(detail_part) != std::string::npos, step.error.detail);
}

// Runs the RFC exchange with `first` and `final` in place of the client's messages.
SaslStep exchange(std::string_view first, std::string_view final_message) {
  auto server = rfc_server();
  const auto step = server.start(scram_sha_256, first);
  if (step.outcome != SaslOutcome::continue_exchange) return step;
  return server.next(final_message);
}

}  // namespace

TEST_CASE("RFC 7677's exchange, byte for byte, and the ClientKey it reveals") {
  auto server = rfc_server();
  CHECK(server.mechanisms() == std::vector<std::string_view>{scram_sha_256});
  const auto first = server.start(scram_sha_256, rfc::client_first);
  REQUIRE(first.outcome == SaslOutcome::continue_exchange);
  CHECK(first.message == rfc::server_first);
  CHECK_FALSE(server.upstream_keys());
  const auto final_step = server.next(rfc::client_final);
  REQUIRE(final_step.outcome == SaslOutcome::success);
  CHECK(final_step.message == rfc::server_final);
  CHECK(server.authenticated());
  const auto keys = server.upstream_keys();
  REQUIRE(keys);
  CHECK(keys->client_key == key_of(rfc::client_key_base64));
  REQUIRE(keys->server_key);
  CHECK(*keys->server_key == rfc::secret().server_key);
  CHECK(keys->salt == rfc::secret().salt);
  CHECK(keys->iterations == 4096);
}

TEST_CASE("a SASLInitialResponse without data gets an empty challenge first") {
  auto server = rfc_server();
  const auto empty = server.start(scram_sha_256, std::nullopt);
  CHECK(empty.outcome == SaslOutcome::continue_exchange);
  CHECK(empty.message.empty());
  CHECK(server.next(rfc::client_first).message == rfc::server_first);
  CHECK(server.next(rfc::client_final).outcome == SaslOutcome::success);
}

TEST_CASE("a wrong password is refused with PostgreSQL's words and SQLSTATE 28P01") {
  auto server = rfc_server();
  REQUIRE(server.start(scram_sha_256, rfc::client_first).outcome == SaslOutcome::continue_exchange);
  std::string tampered(rfc::client_final);
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  const auto step = server.next(tampered);
  check_refused(step, AuthErrorCode::invalid_password,
                "password authentication failed for user \"user\"");
  CHECK(sqlstate(step.error.code) == "28P01");
  CHECK_FALSE(server.upstream_keys());
  CHECK(server.next(rfc::client_final).outcome == SaslOutcome::failure);  // over for good
}

TEST_CASE("mechanism choice follows what was offered") {
  auto plain = rfc_server();
  check_refused(plain.start(scram_sha_256_plus, rfc::client_first),
                AuthErrorCode::protocol_violation,
                "client selected an invalid SASL authentication mechanism");
  check_refused(rfc_server().start("SCRAM-SHA-1", rfc::client_first),
                AuthErrorCode::protocol_violation,
                "client selected an invalid SASL authentication mechanism");
  check_refused(rfc_server().start("", rfc::client_first), AuthErrorCode::protocol_violation,
                "client selected an invalid SASL authentication mechanism");
  CHECK(rfc_server(true).mechanisms() ==
        std::vector<std::string_view>{scram_sha_256_plus, scram_sha_256});
}

TEST_CASE("gs2 channel-binding flags are judged as PostgreSQL judges them") {
  const std::string bare = "n=,r=abc";
  SUBCASE("no PLUS on offer: n and y pass, p is a protocol violation") {
    CHECK(rfc_server().start(scram_sha_256, "n,," + bare).outcome ==
          SaslOutcome::continue_exchange);
    CHECK(rfc_server().start(scram_sha_256, "y,," + bare).outcome ==
          SaslOutcome::continue_exchange);
    check_refused(rfc_server().start(scram_sha_256, "p=tls-server-end-point,," + bare),
                  AuthErrorCode::protocol_violation, "malformed SCRAM message",
                  "without channel binding");
  }
  SUBCASE("PLUS on offer, SCRAM-SHA-256 chosen: n passes, y is a downgrade (28000)") {
    CHECK(rfc_server(true).start(scram_sha_256, "n,," + bare).outcome ==
          SaslOutcome::continue_exchange);
    const auto step = rfc_server(true).start(scram_sha_256, "y,," + bare);
    check_refused(step, AuthErrorCode::invalid_authorization,
                  "SCRAM channel binding negotiation error", "this server does support");
    CHECK(sqlstate(step.error.code) == "28000");
  }
  SUBCASE("PLUS chosen: only p=tls-server-end-point") {
    CHECK(rfc_server(true).start(scram_sha_256_plus, "p=tls-server-end-point,," + bare).outcome ==
          SaslOutcome::continue_exchange);
    for (const char* flag : {"n,,", "y,,"})
      check_refused(rfc_server(true).start(scram_sha_256_plus, flag + bare),
                    AuthErrorCode::protocol_violation, "malformed SCRAM message",
                    "does not include channel binding data");
    check_refused(rfc_server(true).start(scram_sha_256_plus, "p=tls-unique,," + bare),
                  AuthErrorCode::protocol_violation,
                  "unsupported SCRAM channel-binding type \"tls-unique\"");
  }
  SUBCASE("the flag must be repeated in client-final-message") {
    auto server = rfc_server();
    REQUIRE(server.start(scram_sha_256, "n,,n=,r=abc").outcome == SaslOutcome::continue_exchange);
    check_refused(server.next("c=eSws,r=abc" + std::string(rfc::server_nonce) +
                              ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="),
                  AuthErrorCode::protocol_violation,
                  "unexpected SCRAM channel-binding attribute in client-final-message");
  }
  SUBCASE("unknown flags") {
    check_refused(rfc_server().start(scram_sha_256, "x,," + bare),
                  AuthErrorCode::protocol_violation, "malformed SCRAM message",
                  "Unexpected channel-binding flag \"'x'\"");
  }
}

TEST_CASE("authzid and mandatory extensions are refused; optional extensions are skipped") {
  check_refused(rfc_server().start(scram_sha_256, "n,a=admin,n=,r=abc"),
                AuthErrorCode::feature_not_supported,
                "client uses authorization identity, but it is not supported");
  check_refused(rfc_server().start(scram_sha_256, "n,,m=ext,n=,r=abc"),
                AuthErrorCode::feature_not_supported,
                "client requires an unsupported SCRAM extension");
  CHECK(rfc_server().start(scram_sha_256, "n,,n=,r=abc,x=optional").outcome ==
        SaslOutcome::continue_exchange);
  check_refused(rfc_server().start(scram_sha_256, "n,,n=,r=abc,1=x"),
                AuthErrorCode::protocol_violation, "malformed SCRAM message",
                "Attribute expected, but found invalid character");
  check_refused(rfc_server().start(scram_sha_256, "n,,n=,r=ab\x7f"),
                AuthErrorCode::protocol_violation, "non-printable characters in SCRAM nonce");
  check_refused(rfc_server().start(scram_sha_256, "n,,n=,r="), AuthErrorCode::protocol_violation,
                "non-printable characters in SCRAM nonce");
}

TEST_CASE("messages that are empty, too long or hold a NUL are refused") {
  check_refused(rfc_server().start(scram_sha_256, ""), AuthErrorCode::protocol_violation,
                "malformed SCRAM message", "The message is empty.");
  using namespace std::string_view_literals;
  check_refused(rfc_server().start(scram_sha_256, "n,,n=,r=abc\0x"sv),
                AuthErrorCode::protocol_violation, "malformed SCRAM message",
                "Message length does not match input length.");
  check_refused(rfc_server().start(scram_sha_256, "n,,n=,r=" + std::string(9000, 'a')),
                AuthErrorCode::protocol_violation, "malformed SCRAM message", "too long");
}

TEST_CASE("client-final-message: nonce, proof and trailing garbage") {
  const std::string proof = ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
  const std::string nonce = std::string(rfc::client_nonce) + std::string(rfc::server_nonce);
  check_refused(exchange(rfc::client_first, "c=biws,r=" + nonce + "x" + proof),
                AuthErrorCode::protocol_violation, "invalid SCRAM response",
                "Nonce does not match.");
  check_refused(exchange(rfc::client_first, "c=biws,r=" + nonce + ",p=Zm9v"),
                AuthErrorCode::protocol_violation, "malformed SCRAM message",
                "Malformed proof in client-final-message.");
  check_refused(exchange(rfc::client_first, "c=biws,r=" + nonce + proof + ",x=1"),
                AuthErrorCode::protocol_violation, "malformed SCRAM message",
                "Garbage found at the end of client-final-message.");
  check_refused(exchange(rfc::client_first, "c=biws,r=" + nonce), AuthErrorCode::protocol_violation,
                "malformed SCRAM message", "Attribute expected, but found end of string.");
  check_refused(exchange(rfc::client_first, "r=" + nonce + proof),
                AuthErrorCode::protocol_violation, "malformed SCRAM message",
                "Expected attribute \"c\" but found \"'r'\".");
  // An optional extension before the proof is read and skipped (the proof then no longer
  // matches, since the extension is part of what it signs).
  check_refused(exchange(rfc::client_first, "c=biws,r=" + nonce + ",x=ext" + proof),
                AuthErrorCode::invalid_password,
                "password authentication failed for user \"user\"");
}

TEST_CASE("every truncation of either client message is refused, never accepted") {
  const std::string first(rfc::client_first), final_message(rfc::client_final);
  for (std::size_t cut = 0; cut < first.size(); ++cut)
    CHECK_MESSAGE(exchange(first.substr(0, cut), final_message).outcome == SaslOutcome::failure,
                  cut);
  for (std::size_t cut = 0; cut < final_message.size(); ++cut)
    CHECK_MESSAGE(exchange(first, final_message.substr(0, cut)).outcome == SaslOutcome::failure,
                  cut);
}

TEST_CASE("random and mutated messages never crash the server nor get through") {
  std::mt19937 random(20240515);
  const std::string alphabet = "nyp=,acrsimvx0123456789+/ABCZbiwseSw\x01\xff";
  for (int round = 0; round < 3000; ++round) {
    std::string first, final_message;
    const auto length = random() % 64;
    for (std::size_t i = 0; i < length; ++i) first += alphabet[random() % alphabet.size()];
    if (round % 2 == 0) {  // mutate a real message in one place instead
      first = std::string(rfc::client_first);
      first[random() % first.size()] = alphabet[random() % alphabet.size()];
    }
    final_message = std::string(rfc::client_final);
    final_message[random() % final_message.size()] = alphabet[random() % alphabet.size()];
    auto server = rfc_server(round % 3 == 0);
    const auto mechanism = round % 5 == 0 ? scram_sha_256_plus : scram_sha_256;
    const auto step = server.start(mechanism, first);
    if (step.outcome != SaslOutcome::continue_exchange) continue;
    const auto last = server.next(final_message);
    if (last.outcome == SaslOutcome::success) {  // only a mutation that changed nothing
      CHECK(final_message == rfc::client_final);
      CHECK(first == rfc::client_first);
    }
  }
}

TEST_CASE("out-of-order calls are refused") {
  auto fresh = rfc_server();
  check_refused(fresh.next(rfc::client_first), AuthErrorCode::protocol_violation,
                "unexpected SASLResponse before SASLInitialResponse");
  auto twice = rfc_server();
  REQUIRE(twice.start(scram_sha_256, rfc::client_first).outcome == SaslOutcome::continue_exchange);
  CHECK(twice.start(scram_sha_256, rfc::client_first).outcome == SaslOutcome::failure);
  auto done = rfc_server();
  REQUIRE(done.start(scram_sha_256, rfc::client_first).outcome == SaslOutcome::continue_exchange);
  REQUIRE(done.next(rfc::client_final).outcome == SaslOutcome::success);
  CHECK(done.next(rfc::client_final).outcome == SaslOutcome::failure);
}

TEST_CASE("an unknown user goes through the same motions and fails like a wrong password") {
  const auto nonce = seedproxy::test::test_mock_nonce();
  ScramServerOptions options;
  options.server_nonce = std::string(rfc::server_nonce);
  auto ghost = ScramServer::doomed("user", nonce, "Role \"user\" does not exist.", options);
  CHECK(ghost.mechanisms() == rfc_server().mechanisms());
  const auto first = ghost.start(scram_sha_256, rfc::client_first);
  REQUIRE(first.outcome == SaslOutcome::continue_exchange);
  // Same shape as a real user's challenge: same nonce, a 16-byte salt, the default iterations.
  const auto mock = mock_scram_secret("user", nonce);
  CHECK(first.message == "r=" + std::string(rfc::client_nonce) + std::string(rfc::server_nonce) +
                             ",s=" + mock.salt_base64 + ",i=4096");
  CHECK(mock.salt_base64.size() == rfc::salt_base64.size());
  // Asked again, an unknown user gets the same salt: nothing changes between attempts.
  auto again = ScramServer::doomed("user", nonce, "", options);
  CHECK(again.start(scram_sha_256, rfc::client_first).message == first.message);

  const auto refused = ghost.next(rfc::client_final);
  auto wrong = rfc_server();
  (void)wrong.start(scram_sha_256, rfc::client_first);
  std::string tampered(rfc::client_final);
  tampered[tampered.size() - 5] = tampered[tampered.size() - 5] == 'A' ? 'B' : 'A';
  const auto wrong_password = wrong.next(tampered);
  CHECK(refused.outcome == SaslOutcome::failure);
  CHECK(refused.error.code == wrong_password.error.code);
  CHECK(refused.error.message == wrong_password.error.message);
  CHECK(refused.error.detail == wrong_password.error.detail);
  CHECK(refused.error.log_detail == "Role \"user\" does not exist.");
  CHECK_FALSE(ghost.upstream_keys());
}

TEST_CASE("no proof opens a doomed exchange, not even one built on the mock's zero keys") {
  const auto nonce = seedproxy::test::test_mock_nonce();
  ScramServerOptions options;
  options.server_nonce = "s";
  auto ghost = ScramServer::doomed("mallory", nonce, "no such role", options);
  const auto first = ghost.start(scram_sha_256, "n,,n=,r=c");
  REQUIRE(first.outcome == SaslOutcome::continue_exchange);
  const std::string without_proof = "c=biws,r=cs";
  const auto message = auth_message("n=,r=c", first.message, without_proof);
  const SecretKey zero;
  const SecretKey proof = xor_keys(zero, client_signature(zero, message));
  const auto step = ghost.next(without_proof + ",p=" + base64_encode(proof.bytes()));
  CHECK(step.outcome == SaslOutcome::failure);
  CHECK(step.error.code == AuthErrorCode::invalid_password);
}
