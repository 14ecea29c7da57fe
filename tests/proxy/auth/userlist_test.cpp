// PgBouncer's userlist format: entries, escaping, comments, and errors by line.
#include "proxy/auth/userlist.hpp"

#include <doctest/doctest.h>

#include "tests/proxy/auth/auth_fixtures.hpp"

using namespace seedproxy::auth;
namespace pg = seedproxy::test::postgres15;

namespace {

// The first error's line and message, for files that must be refused.
UserlistError first_error(std::string_view text) {
  const auto parsed = parse_userlist(text);
  REQUIRE_FALSE(parsed.ok());
  return parsed.errors.front();
}

}  // namespace

TEST_CASE("each kind of secret is recognised") {
  const std::string text = std::string("; PgBouncer userlist\n") + "\"scram_user\" \"" +
                           std::string(pg::scram_secret) + "\"\n" + "\"md5_user\" \"" +
                           std::string(pg::md5_secret) + "\"\n" +
                           "\"plain\" \"p@ss word\"\n"
                           "\"nopass\" \"\"\n";
  const auto parsed = parse_userlist(text);
  REQUIRE(parsed.ok());
  CHECK(parsed.users.size() == 4);
  const auto* scram = parsed.users.find("scram_user");
  REQUIRE(scram);
  CHECK(scram->line == 2);
  CHECK(scram->secret.kind() == SecretKind::scram_sha_256);
  CHECK(scram->secret.scram()->iterations == 4096);
  CHECK(parsed.users.find("md5_user")->secret.kind() == SecretKind::md5);
  const auto* plain = parsed.users.find("plain");
  CHECK(plain->secret.kind() == SecretKind::plain_text);
  CHECK(plain->secret.plain_text()->text() == "p@ss word");
  CHECK(parsed.users.find("nopass")->secret.kind() == SecretKind::none);
  CHECK(parsed.users.find("nobody") == nullptr);
}

TEST_CASE("quotes are escaped by doubling; blanks, CRLF, comments and extra fields are fine") {
  const auto parsed = parse_userlist(
      "  \"we\"\"ird\"\t\"pa\"\"ss\"  \r\n"
      "\n"
      "   ; indented comment\n"
      "\"extra\" \"x\" \"ignored field\" ; trailing comment\n"
      "\"last\" \"no newline at end\"");
  REQUIRE(parsed.ok());
  CHECK(parsed.users.find("we\"ird")->secret.plain_text()->text() == "pa\"ss");
  CHECK(parsed.users.find("extra")->line == 4);
  CHECK(parsed.users.find("last")->secret.plain_text()->text() == "no newline at end");
  CHECK(parse_userlist("").ok());
  CHECK(parse_userlist("; only a comment").ok());
}

TEST_CASE("mistakes are reported with their line numbers") {
  struct Case {
    std::string_view text;
    std::size_t line;
    std::string_view message;
  };
  for (const auto& c : {
           Case{"\"a\" \"b\"\nuser \"pw\"\n", 2, "expected a quoted user name"},
           Case{"\"a\" \"b\"\n\n\"user\" pw\n", 3, "expected a quoted secret after the user name"},
           Case{"\"user\"\n", 1, "expected a quoted secret after the user name"},
           Case{"\"user \"pw\"\n", 1, "expected a quoted secret after the user name"},
           Case{"\"user\" \"pw\n\"\n", 1, "unterminated quoted secret"},
           Case{"\"user\n", 1, "unterminated quoted user name"},
           Case{"\"user\" \"pw\"x\n", 1, "unexpected text after the secret (a missing quote?)"},
           Case{"\"user\" \"p\"w\"\n", 1, "unexpected text after the secret (a missing quote?)"},
           Case{"\"\" \"pw\"\n", 1, "empty user name"},
           Case{"\"u\" \"SCRAM-SHA-256$4096:broken\"\n", 1, "malformed SCRAM-SHA-256 secret"},
           Case{"\"u\" \"a\"\n\"u\" \"b\"\n", 2, "user \"u\" already defined on line 1"},
       }) {
    const auto error = first_error(c.text);
    CHECK_MESSAGE(error.line == c.line, c.text);
    CHECK_MESSAGE(error.message == c.message, c.text);
  }
  using namespace std::string_view_literals;
  CHECK(first_error("\"a\" \"b\0\"\n"sv).message == "NUL byte in line");
}

TEST_CASE("lengths are bounded like PgBouncer's") {
  const std::string long_user(max_userlist_user_length + 1, 'u');
  CHECK(first_error("\"" + long_user + "\" \"pw\"").message == "user name longer than 128 bytes");
  const std::string long_secret(max_userlist_secret_length + 1, 's');
  CHECK(first_error("\"u\" \"" + long_secret + "\"").message == "secret longer than 2048 bytes");
  const std::string quotes(2 * max_userlist_secret_length + 2, '"');
  CHECK(first_error("\"u\" \"" + quotes + "\"").message == "secret longer than 2048 bytes");
  CHECK(parse_userlist("\"" + std::string(max_userlist_user_length, 'u') + "\" \"pw\"").ok());
}

TEST_CASE("every error in a file is listed, up to a limit, and named with the file") {
  std::string text;
  for (int i = 0; i < 30; ++i) text += "broken line\n";
  const auto parsed = parse_userlist(text);
  CHECK(parsed.errors.size() == max_userlist_errors);
  CHECK(parsed.errors[3].line == 4);
  CHECK(describe(parsed.errors[3], "/etc/seedproxy/userlist.txt") ==
        "/etc/seedproxy/userlist.txt:4: expected a quoted user name");
}

TEST_CASE("a plain-text user's SCRAM secret is salted like a mock one, and verifies") {
  const auto nonce = seedproxy::test::test_mock_nonce();
  const auto secret = scram_secret_for_password("p@ss", "plain", nonce);
  REQUIRE(secret);
  CHECK(secret->salt == mock_scram_salt("plain", nonce));
  CHECK(secret->iterations == default_scram_iterations);
  const auto rebuilt = build_scram_secret("p@ss", secret->salt, secret->iterations);
  CHECK(format_scram_secret(*rebuilt).text() == format_scram_secret(*secret).text());
}
