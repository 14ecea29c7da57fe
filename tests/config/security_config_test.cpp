// Unit tests of the client_tls, server_tls and auth sections: defaults, every mode, the rules
// between keys, and errors that name the field.
#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "config/config.hpp"

using namespace seedproxy::config;

namespace {

void check_error(std::string_view text, std::string_view field, std::string_view fragment) {
  INFO("configuration: ", text);
  try {
    (void)parse_config(text);
    FAIL("accepted an invalid configuration");
  } catch (const ConfigError& error) {
    const std::string what = error.what();
    INFO("what(): ", what);
    CHECK(error.field() == field);
    CHECK(what.find(fragment) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("TLS and authentication default to today's behaviour") {
  const auto config = parse_config("{}");
  CHECK(config.client_tls.sslmode == SslMode::disable);
  CHECK(config.client_tls.protocols == std::vector<std::string>{"TLSv1.2", "TLSv1.3"});
  CHECK(config.server_tls.sslmode == SslMode::disable);
  CHECK(config.auth.mode == AuthMode::relay);
  CHECK(config.auth.user == "postgres");  // control.user
  CHECK(config.auth.database == "postgres");
}

TEST_CASE("client_tls reads every mode and file") {
  for (const auto& [name, mode] :
       {std::pair{"allow", SslMode::allow}, std::pair{"prefer", SslMode::prefer},
        std::pair{"require", SslMode::require}}) {
    const auto config = parse_config(std::string(R"({"client_tls": {"sslmode": ")") + name +
                                     R"(", "cert_file": "c.pem", "key_file": "k.pem"}})");
    CHECK(config.client_tls.sslmode == mode);
    CHECK(to_string(mode) == name);
  }
  const auto config = parse_config(
      R"({"client_tls": {"sslmode": "verify-full", "cert_file": "c", "key_file": "k",
          "ca_file": "ca", "protocols": ["TLSv1.3"], "ciphers": "HIGH"}})");
  CHECK(config.client_tls.sslmode == SslMode::verify_full);
  CHECK(config.client_tls.ca_file == "ca");
  CHECK(config.client_tls.protocols == std::vector<std::string>{"TLSv1.3"});
  CHECK(config.client_tls.ciphers == "HIGH");
}

TEST_CASE("client_tls refuses what cannot work") {
  check_error(R"({"client_tls": {"sslmode": "require"}})", "client_tls.cert_file",
              "needs a certificate");
  check_error(R"({"client_tls": {"sslmode": "require", "cert_file": "c"}})", "client_tls.key_file",
              "private key");
  check_error(R"({"client_tls": {"sslmode": "verify-ca", "cert_file": "c", "key_file": "k"}})",
              "client_tls.ca_file", "client certificates");
  check_error(R"({"client_tls": {"sslmode": "requir"}})", "client_tls.sslmode",
              "did you mean \"require\"?");
  check_error(R"({"client_tls": {"protocols": ["TLSv1.1"]}})", "client_tls.protocols[0]",
              "older versions are not offered");
  check_error(R"({"client_tls": {"protocols": []}})", "client_tls.protocols", "at least one");
  check_error(R"({"client_tls": {"certfile": "c"}})", "client_tls.certfile",
              "did you mean \"cert_file\"?");
}

TEST_CASE("server_tls modes and their files") {
  const auto config = parse_config(
      R"({"server_tls": {"sslmode": "verify-full", "ca_file": "ca", "cert_file": "c",
          "key_file": "k"}})");
  CHECK(config.server_tls.sslmode == SslMode::verify_full);
  CHECK(config.server_tls.cert_file == "c");
  check_error(R"({"server_tls": {"sslmode": "allow"}})", "server_tls.sslmode", "expected one of");
  check_error(R"({"server_tls": {"sslmode": "verify-ca"}})", "server_tls.ca_file",
              "server's certificate");
  check_error(R"({"server_tls": {"cert_file": "c"}})", "server_tls.key_file", "go together");
}

TEST_CASE("auth.mode defaults to proxy only where relaying cannot work") {
  const std::string both =
      R"({"client_tls": {"sslmode": "require", "cert_file": "c", "key_file": "k"},
          "server_tls": {"sslmode": "require"})";
  CHECK(parse_config(both + "}").auth.mode == AuthMode::proxy);
  CHECK(parse_config(both + R"(, "auth": {"mode": "relay"}})").auth.mode == AuthMode::relay);
  CHECK(parse_config(R"({"server_tls": {"sslmode": "require"}})").auth.mode == AuthMode::relay);
}

TEST_CASE("auth reads its keys; the user defaults to control's") {
  const auto config = parse_config(
      R"({"control": {"user": "ctl", "password": "pw"},
          "auth": {"mode": "proxy", "file": "/etc/userlist.txt", "trust_users": ["app"]}})");
  CHECK(config.auth.mode == AuthMode::proxy);
  CHECK(config.auth.user == "ctl");
  CHECK(config.auth.password == std::optional<std::string>("pw"));
  CHECK(config.auth.file == "/etc/userlist.txt");
  CHECK_FALSE(config.auth.query_set);
  CHECK(config.auth.trust_users == std::vector<std::string>{"app"});
  const auto own = parse_config(
      R"j({"auth": {"user": "pgbouncer", "query": "SELECT u, p FROM f($1)", "database": "a"}})j");
  CHECK(own.auth.user == "pgbouncer");
  CHECK_FALSE(own.auth.password.has_value());
  CHECK(own.auth.query == "SELECT u, p FROM f($1)");
  CHECK(own.auth.database == "a");
  check_error(R"({"auth": {"mode": "trust"}})", "auth.mode", "expected one of");
  check_error(R"({"auth": {"trust_users": ["a", "a"]}})", "auth.trust_users[1]", "already listed");
}

TEST_CASE("server_pool: off by default, and only where the proxy vouches for every client") {
  const auto plain = parse_config("{}");
  CHECK_FALSE(plain.server_pool.enabled);
  CHECK(plain.server_pool.reset_query == "DISCARD ALL");
  CHECK(plain.server_pool.idle_timeout_seconds == 600.0);
  CHECK(plain.server_pool.lifetime_seconds == 3600.0);
  CHECK(plain.server_pool.max_idle == 100);
  const auto pool = parse_config(
      R"({"auth": {"mode": "proxy"},
          "server_pool": {"enabled": true, "reset_query": "DISCARD ALL; SELECT 1",
                          "idle_timeout_seconds": 1.5, "lifetime_seconds": 60, "max_idle": 7}})");
  CHECK(pool.server_pool.enabled);
  CHECK(pool.server_pool.reset_query == "DISCARD ALL; SELECT 1");
  CHECK(pool.server_pool.idle_timeout_seconds == 1.5);
  CHECK(pool.server_pool.lifetime_seconds == 60.0);
  CHECK(pool.server_pool.max_idle == 7);
  // Both legs on TLS make proxy the default mode: the pool is accepted without naming it.
  CHECK(parse_config(R"({"client_tls": {"sslmode": "require", "cert_file": "c", "key_file": "k"},
                         "server_tls": {"sslmode": "require"},
                         "server_pool": {"enabled": true}})")
            .server_pool.enabled);
  // Off, the section is read and nothing else is asked of the configuration.
  CHECK_FALSE(parse_config(R"({"server_pool": {"enabled": false}})").server_pool.enabled);
  check_error(R"({"server_pool": {"enabled": true}})", "server_pool.enabled",
              "set auth.mode to \"proxy\"");
  check_error(R"({"auth": {"mode": "relay"}, "server_pool": {"enabled": true}})",
              "server_pool.enabled", "auth.mode is \"relay\"");
  check_error(R"({"auth": {"mode": "proxy"}, "server_pool": {"enabled": true},
                  "upstream": {"hosts": [{"host": "a", "port": 5432}, {"host": "b", "port": 5432}]}})",
              "server_pool.enabled", "several hosts");
  check_error(R"({"server_pool": {"reset_query": "  "}})", "server_pool.reset_query",
              "non-empty string");
  check_error(R"({"server_pool": {"max_idle": 0}})", "server_pool.max_idle", "");
  check_error(R"({"server_pool": {"idle_timeout_seconds": 0}})", "server_pool.idle_timeout_seconds",
              "");
  check_error(R"({"server_pool": {"enable": true}})", "server_pool.enable", "");
}
