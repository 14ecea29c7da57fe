// SCRAM key arithmetic and PostgreSQL's secret format, against RFC 7677 and PostgreSQL 15.
#include "proxy/auth/scram_keys.hpp"

#include <doctest/doctest.h>

#include "proxy/auth/base64.hpp"
#include "proxy/auth/scram_secret.hpp"
#include "tests/proxy/auth/auth_fixtures.hpp"

using namespace seedproxy::auth;
namespace rfc = seedproxy::test::rfc7677;
namespace pg = seedproxy::test::postgres15;
using seedproxy::test::key_of;

TEST_CASE("RFC 7677: keys, proof and server signature from the password") {
  const auto salt = *base64_decode(rfc::salt_base64);
  const SecretKey salted = salted_password(rfc::password, salt, 4096);
  const SecretKey client_key = client_key_from(salted);
  CHECK(client_key == key_of(rfc::client_key_base64));
  const auto secret = rfc::secret();
  CHECK(stored_key_from(client_key) == secret.stored_key);
  CHECK(server_key_from(salted) == secret.server_key);

  const auto message = auth_message("n=user,r=rOprNGfwEbeRWgbNEkqO", rfc::server_first,
                                    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  const SecretKey proof = xor_keys(client_key, client_signature(secret.stored_key, message));
  CHECK("p=" + base64_encode(proof.bytes()) ==
        rfc::client_final.substr(rfc::client_final.find("p=")));
  CHECK("v=" + base64_encode(server_signature(secret.server_key, message).bytes()) ==
        rfc::server_final);

  SUBCASE("the ClientKey comes back out of the proof, and only for the right StoredKey") {
    const auto recovered = recover_client_key(proof, secret.stored_key, message);
    REQUIRE(recovered);
    CHECK(*recovered == client_key);
    CHECK_FALSE(recover_client_key(proof, secret.server_key, message));
    CHECK_FALSE(recover_client_key(proof, secret.stored_key, message + "x"));
    SecretKey tampered = proof;
    tampered.data()[0] ^= std::byte{1};
    CHECK_FALSE(recover_client_key(tampered, secret.stored_key, message));
  }
}

TEST_CASE("secrets parse, print back identically, and rebuild from the password") {
  const auto secret = parse_scram_secret(rfc::stored_secret);
  REQUIRE(secret);
  CHECK(secret->iterations == 4096);
  CHECK(secret->salt.size() == 16);
  CHECK(secret->salt_base64 == rfc::salt_base64);
  CHECK(format_scram_secret(*secret).text() == rfc::stored_secret);
  const auto rebuilt = build_scram_secret(rfc::password, secret->salt, 4096);
  REQUIRE(rebuilt);
  CHECK(format_scram_secret(*rebuilt).text() == rfc::stored_secret);
}

TEST_CASE("a secret written by PostgreSQL 15 is read and matches its password") {
  const auto secret = parse_scram_secret(pg::scram_secret);
  REQUIRE(secret);
  const auto rebuilt = build_scram_secret(pg::scram_password, secret->salt, secret->iterations);
  REQUIRE(rebuilt);
  CHECK(format_scram_secret(*rebuilt).text() == pg::scram_secret);
  const auto wrong = build_scram_secret("pencil-secret!", secret->salt, secret->iterations);
  CHECK_FALSE(format_scram_secret(*wrong).text() == pg::scram_secret);
}

TEST_CASE("malformed secrets are refused") {
  const std::string good(rfc::stored_secret);
  for (std::string_view bad : {
           "",
           "SCRAM-SHA-256$",
           "SCRAM-SHA-1$4096:W22ZaJ0SNY7soEsUEjb6gQ==$a:b",
           "SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
           "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
           "SCRAM-SHA-256$-1:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
           "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
           "SCRAM-SHA-256$4096x:W22ZaJ0SNY7soEsUEjb6gQ==$"
           "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
           "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
           "SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$"
           "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbs"
           "T4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
           "SCRAM-SHA-256$4096:$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
           "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
           "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$Zm9v:"
           "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
           "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
           "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
           "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=:extra",
       })
    CHECK_MESSAGE(!parse_scram_secret(bad), bad);
  for (std::size_t cut = 0; cut < good.size(); ++cut)
    CHECK_MESSAGE(!parse_scram_secret(good.substr(0, cut)), cut);
}

TEST_CASE("the mock secret is deterministic per user and nonce, like scram_mock_salt") {
  const auto nonce = seedproxy::test::test_mock_nonce();
  const auto a = mock_scram_secret("alice", nonce);
  CHECK(a.salt.size() == default_scram_salt_size);
  CHECK(a.iterations == default_scram_iterations);
  CHECK(mock_scram_secret("alice", nonce).salt == a.salt);
  CHECK(mock_scram_secret("bob", nonce).salt != a.salt);
  SecretKey other_nonce = nonce;
  other_nonce.data()[0] ^= std::byte{0xff};
  CHECK(mock_scram_secret("alice", other_nonce).salt != a.salt);
  CHECK(base64_encode(a.salt) == a.salt_base64);
}

TEST_CASE("passwords are usable for SCRAM exactly where SASLprep cannot change them") {
  CHECK(check_password_prep("pencil") == PasswordPrep::usable);
  CHECK(check_password_prep("with\tcontrol\x01") == PasswordPrep::usable);  // ASCII: unchanged
  CHECK(check_password_prep("latin1 \xe9t\xe9") == PasswordPrep::usable);   // not UTF-8: raw
  CHECK(check_password_prep("\xed\xa0\x80") == PasswordPrep::usable);       // surrogate: invalid
  CHECK(check_password_prep("\xc0\xaf") == PasswordPrep::usable);           // overlong: invalid
  CHECK(check_password_prep("\xc3\xa9t\xc3\xa9") == PasswordPrep::needs_saslprep);
  CHECK(check_password_prep(std::string(1024, 'a')) == PasswordPrep::usable);
  CHECK(check_password_prep(std::string(1025, 'a')) == PasswordPrep::too_long);
  CHECK_FALSE(build_scram_secret("\xc3\xa9", as_bytes("salt"), 4096));
}
