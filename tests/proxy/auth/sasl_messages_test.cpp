// Authentication message bodies: what the server sends and what it reads, at every cut.
#include "proxy/auth/sasl_messages.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace seedproxy::auth;

namespace {

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto span = as_bytes(text);
  return {span.begin(), span.end()};
}

}  // namespace

TEST_CASE("AuthenticationSASL lists mechanisms and reads back") {
  const std::vector<std::string_view> offered{scram_sha_256_plus, scram_sha_256};
  const auto body = auth_sasl_body(offered);
  using namespace std::string_view_literals;
  CHECK(body == bytes_of("\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"sv));
  std::string error;
  const auto request = parse_auth_request(body, error);
  REQUIRE(request);
  CHECK(request->code == AuthRequestCode::sasl);
  CHECK(request->mechanisms == std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
  for (std::size_t cut = 0; cut < body.size(); ++cut)
    CHECK_FALSE(parse_auth_request(std::span(body).first(cut), error));
}

TEST_CASE("other authentication requests") {
  std::string error;
  CHECK(parse_auth_request(auth_ok_body(), error)->code == AuthRequestCode::ok);
  const Md5Salt salt{std::byte{9}, std::byte{8}, std::byte{7}, std::byte{6}};
  const auto md5 = parse_auth_request(auth_md5_body(salt), error);
  REQUIRE(md5);
  CHECK(md5->salt == salt);
  CHECK(parse_auth_request(auth_sasl_continue_body("r=x,s=y,i=1"), error)->data == "r=x,s=y,i=1");
  CHECK(parse_auth_request(auth_sasl_final_body("v=abc"), error)->code ==
        AuthRequestCode::sasl_final);
  using namespace std::string_view_literals;
  CHECK_FALSE(parse_auth_request(bytes_of("\0\0\0\x07"sv), error));  // GSSAPI
  CHECK(error == "unsupported authentication request 7");
  CHECK_FALSE(parse_auth_request(bytes_of("\0\0\0\x05\1\2\3"sv), error));
  CHECK_FALSE(parse_auth_request(bytes_of("\0\0\0\0x"sv), error));
  CHECK_FALSE(parse_auth_request(bytes_of("\0\0\0\x0a\0"sv), error));  // no mechanism at all
  CHECK_FALSE(parse_auth_request(bytes_of("\0\0\0\x0aTHIS-NAME-IS-FAR-TOO-LONG\0\0"sv), error));
  CHECK_FALSE(parse_auth_request(auth_sasl_continue_body(std::string(9000, 'x')), error));
}

TEST_CASE("SASLInitialResponse with and without data, and broken ones") {
  std::string error;
  const auto body = sasl_initial_response_body(scram_sha_256, "n,,n=,r=abc");
  const auto parsed = parse_sasl_initial_response(body, error);
  REQUIRE(parsed);
  CHECK(parsed->mechanism == "SCRAM-SHA-256");
  CHECK(parsed->data == "n,,n=,r=abc");
  for (std::size_t cut = 0; cut < body.size(); ++cut)
    CHECK_FALSE(parse_sasl_initial_response(std::span(body).first(cut), error));
  auto longer = body;
  longer.push_back(std::byte{'x'});
  CHECK_FALSE(parse_sasl_initial_response(longer, error));

  using namespace std::string_view_literals;
  const auto without =
      parse_sasl_initial_response(bytes_of("SCRAM-SHA-256\0\xff\xff\xff\xff"sv), error);
  REQUIRE(without);
  CHECK_FALSE(without->data);
  CHECK_FALSE(parse_sasl_initial_response(bytes_of("SCRAM-SHA-256\0\xff\xff\xff\xffx"sv), error));
  CHECK_FALSE(parse_sasl_initial_response(bytes_of("SCRAM-SHA-256\0\x7f\xff\xff\xff"sv), error));
  CHECK_FALSE(parse_sasl_initial_response(
      sasl_initial_response_body(scram_sha_256, std::string(9000, 'a')), error));
}

TEST_CASE("PasswordMessage holds one terminated string") {
  std::string error;
  CHECK(parse_password_message(password_message_body("md5abc"), error) == "md5abc");
  using namespace std::string_view_literals;
  CHECK_FALSE(parse_password_message(bytes_of("md5abc"), error));
  CHECK_FALSE(parse_password_message(bytes_of("md5\0abc\0"sv), error));
  CHECK_FALSE(parse_password_message({}, error));
}
