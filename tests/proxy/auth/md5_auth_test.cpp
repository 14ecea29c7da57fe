// md5 secrets and challenge answers, against PostgreSQL 15's own hash.
#include "proxy/auth/md5_auth.hpp"

#include <doctest/doctest.h>

#include "tests/proxy/auth/auth_fixtures.hpp"

using namespace seedproxy::auth;
namespace pg = seedproxy::test::postgres15;

namespace {
constexpr Md5Salt salt_1234{std::byte{1}, std::byte{2}, std::byte{3}, std::byte{4}};
constexpr Md5Salt salt_high{std::byte{0xff}, std::byte{0}, std::byte{0x80}, std::byte{0x7f}};
}  // namespace

TEST_CASE("the stored hash is md5(password || user), as PostgreSQL 15 wrote it") {
  const auto secret = md5_secret_from_password(pg::md5_password, pg::md5_user);
  CHECK("md5" + std::string(secret.hex()) == pg::md5_secret);
  const auto parsed = parse_md5_secret(pg::md5_secret);
  REQUIRE(parsed);
  CHECK(parsed->hex() == secret.hex());
}

TEST_CASE("answers to a salt (vectors computed with Python's hashlib)") {
  const auto secret = *parse_md5_secret(pg::md5_secret);
  CHECK(md5_response(secret, salt_1234).text() == "md531893b0f56aa6bddb870b3dec99ed413");
  CHECK(md5_response(secret, salt_high).text() == "md54b63ba5826422ae41a3ade2afb99f464");
}

TEST_CASE("a client's answer is verified against the stored hash") {
  const auto secret = *parse_md5_secret(pg::md5_secret);
  // What libpq sends: md5(md5(password || user) || salt), from the password.
  const auto from_password = md5_secret_from_password(pg::md5_password, pg::md5_user);
  CHECK(verify_md5_response(secret, salt_1234, md5_response(from_password, salt_1234).text()));
  CHECK_FALSE(
      verify_md5_response(secret, salt_high, md5_response(from_password, salt_1234).text()));
  CHECK_FALSE(verify_md5_response(secret, salt_1234, "md531893b0f56aa6bddb870b3dec99ed41"));
  CHECK_FALSE(verify_md5_response(secret, salt_1234, "md531893b0f56aa6bddb870b3dec99ed414"));
  CHECK_FALSE(verify_md5_response(secret, salt_1234, "MD531893B0F56AA6BDDB870B3DEC99ED413"));
  CHECK_FALSE(verify_md5_response(secret, salt_1234, ""));
  const auto wrong = md5_secret_from_password("other", pg::md5_user);
  CHECK_FALSE(verify_md5_response(secret, salt_1234, md5_response(wrong, salt_1234).text()));
}

TEST_CASE("only md5 followed by 32 lowercase hex digits is an md5 secret") {
  for (std::string_view bad :
       {"", "md5", "md57a8f979a5ccc77e4b3150f6781dcbfb", "md57a8f979a5ccc77e4b3150f6781dcbfbff",
        "md57A8F979A5CCC77E4B3150F6781DCBFBF", "MD57a8f979a5ccc77e4b3150f6781dcbfbf",
        "md57a8f979a5ccc77e4b3150f6781dcbfbg"})
    CHECK_MESSAGE(!parse_md5_secret(bad), bad);
}

TEST_CASE("unknown users get a stable stand-in, and salts are random") {
  const auto nonce = seedproxy::test::test_mock_nonce();
  CHECK(mock_md5_secret("ghost", nonce).hex() == mock_md5_secret("ghost", nonce).hex());
  CHECK(mock_md5_secret("ghost", nonce).hex() != mock_md5_secret("ghost2", nonce).hex());
  CHECK(mock_md5_secret("ghost", nonce).hex().size() == 32);
  Md5Salt a{}, b{};
  REQUIRE(random_md5_salt(a));
  REQUIRE(random_md5_salt(b));
  CHECK(a != b);  // 2^-32 chance of a false failure
}
