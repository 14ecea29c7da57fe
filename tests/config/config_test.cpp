// Unit tests of configuration parsing: every key, every default, every kind of error.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "config/config.hpp"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

using namespace seedproxy::config;

namespace {

// Parsing `text` must fail on `field`, and what() must be "field: ..." containing `fragment`.
void check_error(std::string_view text, std::string_view field, std::string_view fragment) {
  INFO("configuration: ", text);
  try {
    (void)parse_config(text);
    FAIL("accepted an invalid configuration");
  } catch (const ConfigError& error) {
    const std::string what = error.what();
    INFO("what(): ", what);
    CHECK(error.field() == field);
    if (!field.empty()) CHECK(what.rfind(std::string(field) + ": ", 0) == 0);
    CHECK(what.find(fragment) != std::string::npos);
    CHECK(what.find('\n') == std::string::npos);
  }
}

// A seed object with one field replaced (or, with an empty value, removed).
std::string seed_with(std::string_view key, std::string_view value) {
  std::string seed = "{";
  const std::pair<std::string_view, std::string_view> fields[] = {
      {"database", R"("bank")"},
      {"entity", R"("public.account")"},
      {"attribute", R"("risk_score")"},
      {"type", R"j("numeric(8,2)")j"},
      {"expression", R"("balance / 1000.0")"}};
  for (const auto& [name, original] : fields) {
    const std::string_view used = name == key ? value : original;
    if (used.empty()) continue;
    if (seed.size() > 1) seed += ", ";
    // append(), not operator+ chains: GCC 12 at -O2 misreports those (-Wrestrict, PR 105329).
    seed.append("\"").append(name).append("\": ").append(used);
  }
  if (key == "materialize") seed.append(", \"materialize\": ").append(value);
  seed.append("}");
  return seed;
}

std::string one_seed(std::string_view key, std::string_view value) {
  return R"({"seeds": [)" + seed_with(key, value) + "]}";
}

constexpr std::string_view full_config = R"j({
  "listen": {"host": "0.0.0.0", "port": 7432},
  "upstream": {"host": "db.internal", "port": 5433},
  "control": {"user": "seedproxy", "password": "s3cret"},
  "metrics": {"host": "127.0.0.2", "port": 9432},
  "admin": {"users": ["alice", "bob"]},
  "ddl_seeds": true,
  "seeds": [
    {"database": "bank", "entity": "public.account", "attribute": "risk_score",
     "type": "numeric(8,2)",
                           "expression" : "balance / 1000.0 + credit_limit / 500.0",
                           "materialize" : {
  "policy" : "threshold", "reads" : 250, "window_seconds" : 3600
}
},
    {"database": "bank", "entity": "customer", "attribute": "display_name", "type": "text",
     "expression": "initcap(first_name)", "materialize": {"policy": "never"}},
    {"database": "shop", "entity": "\"Sales\".\"Order\"", "attribute": "total_cents",
     "type": "bigint", "expression": "quantity * unit_cents",
     "materialize": {"policy": "manual"}}
  ],
  "limits": {"max_message_bytes": 1048576, "max_clients": 250,
             "startup_timeout_seconds": 2.5, "connect_timeout_seconds": 1},
  "runtime": {"threads": 8, "shutdown_grace_seconds": 0},
  "log": {
  "level" : "debug", "format" : "json"
}
})j";

}  // namespace

TEST_CASE("every field of a complete configuration is read") {
  const Config config = parse_config(full_config);
  CHECK(config.listen.host == "0.0.0.0");
  CHECK(config.listen.port == 7432);
  CHECK(config.upstream.hosts.at(0).host == "db.internal");
  CHECK(config.upstream.hosts.at(0).port == 5433);
  CHECK(config.control.user == "seedproxy");
  REQUIRE(config.control.password.has_value());
  CHECK(*config.control.password == "s3cret");
  REQUIRE(config.metrics.has_value());
  CHECK(config.metrics->host == "127.0.0.2");
  CHECK(config.metrics->port == 9432);
  CHECK(config.admin.users == std::vector<std::string>{"alice", "bob"});
  CHECK(config.ddl_seeds);

  REQUIRE(config.seeds.size() == 3);
  const SeedSpec& risk = config.seeds[0];
  CHECK(risk.database == "bank");
  CHECK(risk.entity == "public.account");
  CHECK(risk.attribute == "risk_score");
  CHECK(risk.type == "numeric(8,2)");
  CHECK(risk.expression == "balance / 1000.0 + credit_limit / 500.0");
  CHECK(risk.materialize.policy == MaterializePolicy::threshold);
  CHECK(risk.materialize.reads == 250);
  CHECK(risk.materialize.window_seconds == 3600);
  const SeedSpec& name = config.seeds[1];
  CHECK(name.entity == "customer");  // kept as written; "public" is implied, not inserted
  CHECK(name.materialize.policy == MaterializePolicy::never);
  CHECK(name.materialize.reads == 100);
  CHECK(name.materialize.window_seconds == 86400);
  const SeedSpec& total = config.seeds[2];
  CHECK(total.database == "shop");
  CHECK(total.entity == R"("Sales"."Order")");
  CHECK(total.materialize.policy == MaterializePolicy::manual);

  CHECK(config.limits.max_message_bytes == 1048576);
  CHECK(config.limits.max_clients == 250);
  CHECK(config.limits.startup_timeout_seconds == doctest::Approx(2.5));
  CHECK(config.limits.connect_timeout_seconds == doctest::Approx(1.0));
  CHECK(config.runtime.threads == 8);
  CHECK(config.runtime.shutdown_grace_seconds == 0.0);
  CHECK(config.log.level == LogLevel::debug);
  CHECK(config.log.format == LogFormat::json);
}

TEST_CASE("an empty object gives the documented defaults") {
  const Config config = parse_config("{}");
  const Config defaults;
  CHECK(config.listen.host == "127.0.0.1");
  CHECK(config.listen.port == 6432);
  CHECK(config.upstream.hosts.at(0).host == "127.0.0.1");
  CHECK(config.upstream.hosts.at(0).port == 5432);
  CHECK(config.control.user == "postgres");
  CHECK_FALSE(config.control.password.has_value());
  CHECK_FALSE(config.metrics.has_value());
  CHECK(config.admin.users.empty());
  CHECK_FALSE(config.ddl_seeds);
  CHECK(config.seeds.empty());
  CHECK(config.limits.max_message_bytes == (std::uint64_t{1} << 30));
  CHECK(config.limits.max_clients == 10000);
  CHECK(config.limits.startup_timeout_seconds == 15.0);
  CHECK(config.limits.connect_timeout_seconds == 5.0);
  CHECK(config.limits.max_authenticating == 64);
  CHECK(config.limits.max_authenticating_per_address == 16);
  CHECK(config.runtime.threads == 1);
  CHECK(config.runtime.shutdown_grace_seconds == 30.0);
  CHECK(config.log.level == LogLevel::info);
  CHECK(config.log.format == LogFormat::text);
  CHECK(config.limits.max_clients == defaults.limits.max_clients);
}

TEST_CASE("partial sections keep the defaults of the keys they omit") {
  const Config config = parse_config(R"({
    "listen": {"port": 7000}, "upstream": {"host": "db"}, "control": {"password": ""},
    "metrics": {"port": 9100}, "admin": {}, "limits": {"max_clients": 5},
    "runtime": {}, "log": {"format": "json"}})");
  CHECK(config.listen.host == "127.0.0.1");
  CHECK(config.listen.port == 7000);
  CHECK(config.upstream.hosts.at(0).host == "db");
  CHECK(config.upstream.hosts.at(0).port == 5432);
  CHECK(config.control.user == "postgres");
  CHECK(config.control.password == std::optional<std::string>(""));
  REQUIRE(config.metrics.has_value());
  CHECK(config.metrics->host == "127.0.0.1");
  CHECK(config.metrics->port == 9100);
  CHECK(config.limits.max_clients == 5);
  CHECK(config.limits.max_message_bytes == (std::uint64_t{1} << 30));
  CHECK(config.log.level == LogLevel::info);
  CHECK(config.log.format == LogFormat::json);
}

TEST_CASE("boundary values are accepted") {
  const Config low = parse_config(R"({"listen": {"port": 1}, "upstream": {"port": 65535},
    "limits": {"max_message_bytes": 1024, "max_clients": 1,
               "startup_timeout_seconds": 0.001, "connect_timeout_seconds": 86400},
    "runtime": {"threads": 256, "shutdown_grace_seconds": 86400}})");
  CHECK(low.listen.port == 1);
  CHECK(low.upstream.hosts.at(0).port == 65535);
  CHECK(low.limits.max_message_bytes == 1024);
  CHECK(low.limits.max_clients == 1);
  CHECK(low.runtime.threads == 256);
  const Config high =
      parse_config(R"({"limits": {"max_message_bytes": 1073741824, "max_clients": 1000000,
                                  "max_authenticating": 1000000,
                                  "max_authenticating_per_address": 1}})");
  CHECK(high.limits.max_message_bytes == 1073741824);
  CHECK(high.limits.max_clients == 1000000);
  CHECK(high.limits.max_authenticating == 1000000);
  CHECK(high.limits.max_authenticating_per_address == 1);
}

TEST_CASE("the example configuration in the source tree is valid") {
  const Config config = load_config_file(std::filesystem::path(SEEDPROXY_SOURCE_DIR) / "config" /
                                         "seedproxy.example.json");
  REQUIRE_FALSE(config.seeds.empty());
  const SeedSpec& seed = config.seeds.front();
  CHECK(seed.database == "bank");
  CHECK(seed.entity == "public.account");
  CHECK(seed.attribute == "risk_score");
  CHECK(seed.type == "numeric(8,2)");
  CHECK(seed.materialize.policy == MaterializePolicy::threshold);
}

TEST_CASE("unknown keys are refused with their path and a suggestion") {
  check_error(R"({"lisen": {}})", "lisen", R"(unknown key "lisen" (did you mean "listen"?))");
  check_error(R"({"LOG": {}})", "LOG", R"((did you mean "log"?))");
  check_error(R"({"listen": {"hots": "x"}})", "listen.hots", R"((did you mean "host"?))");
  check_error(R"({"limits": {"max_client": 3}})", "limits.max_client",
              R"((did you mean "max_clients"?))");
  check_error(one_seed("materialize", R"({"window": 3})"), "seeds[0].materialize.window",
              R"(unknown key "window")");
  check_error(R"({"listen": {"host": "h", "port": 1, "tls": true}})", "listen.tls",
              R"(the keys allowed here are "host", "port")");
  check_error(R"({"zzz": 1})", "zzz", R"(allowed here are "listen", "upstream", "control")");
  check_error(R"({"seeds": [)" + seed_with("database", R"("bank", "comment": "x")") + "]}",
              "seeds[0].comment", R"(unknown key "comment")");
  check_error(R"({"odd key": 1})", R"(["odd key"])", R"(unknown key "odd key")");
}

TEST_CASE("wrong types name the path, the expected type and what was found") {
  check_error(R"({"listen": {"port": "abc"}})", "listen.port",
              R"(expected an integer between 1 and 65535, got string "abc")");
  check_error(R"({"listen": "127.0.0.1:6432"})", "listen",
              R"(expected an object with keys "host", "port", got string "127.0.0.1:6432")");
  check_error(R"({"listen": {"host": 6432}})", "listen.host",
              "expected a non-empty string, got 6432");
  check_error(R"({"upstream": {"port": 5432.5}})", "upstream.port", "got 5432.5");
  check_error(R"({"upstream": {"port": 5432.0}})", "upstream.port", "got 5432.0");
  check_error(R"({"control": {"password": null}})", "control.password",
              "expected a string, got null");
  check_error(R"({"ddl_seeds": "yes"})", "ddl_seeds",
              R"(expected true or false, got string "yes")");
  check_error(R"({"ddl_seeds": 1})", "ddl_seeds", "expected true or false, got 1");
  check_error(R"({"admin": {"users": "alice"}})", "admin.users", "expected an array of user names");
  check_error(R"({"admin": {"users": ["alice", 7]}})", "admin.users[1]",
              "expected a non-empty string, got 7");
  check_error(R"({"seeds": {}})", "seeds",
              "expected an array of seed objects, got an empty object");
  check_error(R"({"seeds": [[]]})", "seeds[0]", "expected an object with keys");
  check_error(R"({"limits": {"max_clients": true}})", "limits.max_clients", "got true");
  check_error(R"({"limits": {"startup_timeout_seconds": "15s"}})", "limits.startup_timeout_seconds",
              R"(got string "15s")");
  check_error(R"({"runtime": {"threads": [4]}})", "runtime.threads", "got an array");
  check_error(R"({"log": {"level": 3}})", "log.level", "got 3");
  check_error(R"({"metrics": true})", "metrics", "expected an object");
  check_error(one_seed("materialize", R"("threshold")"), "seeds[0].materialize",
              R"(expected an object with keys "policy", "reads", "window_seconds")");
  check_error(one_seed("type", "8"), "seeds[0].type", "expected a non-empty string, got 8");
}

TEST_CASE("numbers out of range are refused") {
  check_error(R"({"listen": {"port": 0}})", "listen.port", "between 1 and 65535, got 0");
  check_error(R"({"listen": {"port": 65536}})", "listen.port", "got 65536");
  check_error(R"({"upstream": {"port": -5}})", "upstream.port", "got -5");
  check_error(R"({"metrics": {"port": 99999999999999999999}})", "metrics.port", "got 1e+20");
  check_error(R"({"limits": {"max_message_bytes": 1023}})", "limits.max_message_bytes",
              "between 1024 and 1073741824, got 1023");
  check_error(R"({"limits": {"max_message_bytes": 1073741825}})", "limits.max_message_bytes",
              "got 1073741825");
  check_error(R"({"limits": {"max_clients": 0}})", "limits.max_clients", "between 1 and 1000000");
  check_error(R"({"limits": {"max_clients": 1000001}})", "limits.max_clients", "got 1000001");
  check_error(R"({"limits": {"max_authenticating": 0}})", "limits.max_authenticating",
              "between 1 and 1000000, got 0");
  check_error(R"({"limits": {"max_authenticating_per_address": 1000001}})",
              "limits.max_authenticating_per_address", "got 1000001");
  check_error(R"({"limits": {"startup_timeout_seconds": 0}})", "limits.startup_timeout_seconds",
              "greater than 0");
  check_error(R"({"limits": {"connect_timeout_seconds": -1}})", "limits.connect_timeout_seconds",
              "got -1");
  check_error(R"({"limits": {"connect_timeout_seconds": 1e12}})", "limits.connect_timeout_seconds",
              "at most 86400");
  check_error(R"({"runtime": {"threads": 0}})", "runtime.threads", "between 1 and 256");
  check_error(R"({"runtime": {"threads": 257}})", "runtime.threads", "got 257");
  check_error(R"({"runtime": {"shutdown_grace_seconds": -0.5}})", "runtime.shutdown_grace_seconds",
              "between 0 and 86400, got -0.5");
  check_error(one_seed("materialize", R"({"reads": 0})"), "seeds[0].materialize.reads",
              "expected an integer between 1 and");
  check_error(one_seed("materialize", R"({"window_seconds": -1})"),
              "seeds[0].materialize.window_seconds", "got -1");
}

TEST_CASE("enumerations list the accepted values") {
  check_error(R"({"seeds": [)" + seed_with("database", R"("a")") + ", " +
                  seed_with("materialize", R"({"policy": "sometimes"})") + "]}",
              "seeds[1].materialize.policy",
              R"(expected one of "threshold", "never", "manual", got "sometimes")");
  check_error(one_seed("materialize", R"({"policy": "Manual"})"), "seeds[0].materialize.policy",
              R"(got "Manual" (did you mean "manual"?))");
  check_error(R"({"log": {"level": "warn"}})", "log.level",
              R"(expected one of "debug", "info", "warning", "error", got "warn")");
  check_error(R"({"log": {"format": "xml"}})", "log.format",
              R"(expected one of "text", "json", got "xml")");
}

TEST_CASE("strings that must say something cannot be empty") {
  check_error(R"({"listen": {"host": ""}})", "listen.host",
              R"(expected a non-empty string, got "")");
  check_error(R"({"upstream": {"host": "  "}})", "upstream.host", "non-empty string");
  check_error(R"({"control": {"user": ""}})", "control.user", "non-empty string");
  check_error(R"({"admin": {"users": [""]}})", "admin.users[0]", "non-empty string");
  check_error(R"({"admin": {"users": ["a", "b", "a"]}})", "admin.users[2]",
              R"("a" is already listed at admin.users[0])");
  check_error(R"({"upstream": {"host": "db\u0000evil"}})", "upstream.host", "NUL character");
}

TEST_CASE("seed objects need every field") {
  for (const char* field : {"database", "entity", "attribute", "type", "expression"}) {
    CAPTURE(field);
    check_error(one_seed(field, ""), std::string("seeds[0].") + field, "required key is missing");
    check_error(one_seed(field, R"("")"), std::string("seeds[0].") + field, "non-empty string");
  }
}

TEST_CASE("seed entities and attributes must be SQL names") {
  for (const char* entity : {R"("account")", R"("public.account")", R"("_t$1")",
                             R"("\"Odd \"\" Name\".x")", R"("s.\"T\"")"}) {
    CAPTURE(entity);
    CHECK_NOTHROW((void)parse_config(one_seed("entity", entity)));
  }
  for (const char* entity :
       {R"("db.public.account")", R"("public.")", R"(".account")", R"("bank account")",
        R"("1account")", R"("\"\"")", R"("\"unterminated")", R"("public. account")", R"("a-b")"}) {
    CAPTURE(entity);
    check_error(one_seed("entity", entity), "seeds[0].entity",
                R"(expected "table" or "schema.table")");
  }
  check_error(one_seed("entity", "\"" + std::string(64, 't') + "\""), "seeds[0].entity",
              "is longer than 63 bytes");

  CHECK_NOTHROW((void)parse_config(one_seed("attribute", "\"" + std::string(63, 'a') + "\"")));
  for (const char* attribute :
       {R"("risk-score")", R"("2fast")", R"("\"quoted\"")", R"("t.risk")", R"("risk score")"}) {
    CAPTURE(attribute);
    check_error(one_seed("attribute", attribute), "seeds[0].attribute",
                "expected a plain identifier matching [A-Za-z_][A-Za-z0-9_$]*");
  }
  check_error(one_seed("attribute", "\"" + std::string(64, 'a') + "\""), "seeds[0].attribute",
              "at most 63 bytes");
}

TEST_CASE("two seeds for one attribute are refused, naming both") {
  const std::string first = seed_with("entity", R"("account")");
  SUBCASE("same spelling") {
    check_error(R"({"seeds": [)" + first + ", " + first + "]}", "seeds[1]",
                "declares the same attribute as seeds[0]");
  }
  SUBCASE("public is the default schema and unquoted names fold to lower case") {
    const std::string second = seed_with("entity", R"("PUBLIC.Account")");
    check_error(R"({"seeds": [)" + first + ", " + seed_with("attribute", R"("other")") + ", " +
                    second + "]}",
                "seeds[2]",
                "same attribute as seeds[0] (public.account.risk_score in database \"bank\")");
  }
  SUBCASE("quoted names keep their case, so these differ") {
    const std::string second = seed_with("entity", R"("\"Account\"")");
    CHECK(parse_config(R"({"seeds": [)" + first + ", " + second + "]}").seeds.size() == 2);
  }
  SUBCASE("another database is another attribute") {
    const std::string second = seed_with("database", R"("bank_test")");
    CHECK(parse_config(R"({"seeds": [)" + first + ", " + second + "]}").seeds.size() == 2);
  }
}

TEST_CASE("JSON syntax errors give line and column") {
  check_error("{\n  \"listen\": {\"port\": 6432,}\n}", "",
              "line 2, column 27: invalid JSON: unexpected '}'");
  check_error("{\n  \"log\": }", "", "line 2, column 10: invalid JSON: unexpected '}'");
  check_error("{\"a\": tru}", "", "line 1, column 10: invalid JSON");
  check_error("{\"listen\": {}} trailing", "", "line 1, column 18");
  check_error("{\n\n  \"é\": x}", "", "line 3, column 8");  // characters, not bytes
  check_error("{\"seeds\": [1e999]}", "", "number overflow");
  check_error("{\"a\": \"\xff\"}", "", "line 1, column 8: invalid JSON");
  check_error("{\"listen\": {\"port\": 1}", "", "line 1, column 23: invalid JSON");
  check_error("{/* comment */}", "", "line 1, column 2: invalid JSON");
}

TEST_CASE("a key given twice is refused, not silently overwritten") {
  check_error(R"({"listen": {"port": 1, "port": 2}})", "listen.port", R"(duplicate key "port")");
  check_error(R"({"log": {}, "log": {}})", "log", "duplicate key");
}

TEST_CASE("the document itself must be a non-empty object") {
  check_error("", "", "the configuration is empty");
  check_error(" \n\t ", "", "the configuration is empty");
  check_error("\xEF\xBB\xBF \n", "", "the configuration is empty");
  CHECK(parse_config("\xEF\xBB\xBF{\"log\": {\"level\": \"error\"}}").log.level == LogLevel::error);
  check_error("[]", "", "expected the configuration to be a JSON object, got an empty array");
  check_error("\"listen\"", "", R"(got string "listen")");
  check_error("null", "", "got null");
  check_error("42", "", "got 42");
  std::string deep = R"({"listen": )";
  for (int i = 0; i < 100; ++i) deep += "[";
  std::string deepest = "listen";
  for (int i = 0; i < 63; ++i) deepest += "[0]";
  check_error(deep, deepest, "nesting deeper than 64 levels");
}

TEST_CASE("addresses that cannot work together are refused") {
  check_error(R"({"listen": {"port": 5432}, "upstream": {"port": 5432}})", "upstream",
              "is the proxy's own listen address 127.0.0.1:5432");
  check_error(R"({"metrics": {"port": 6432}})", "metrics.port", "already the listen port");
  check_error(R"({"metrics": {"host": "0.0.0.0"}})", "metrics.port", "required key is missing");
  CHECK_NOTHROW((void)parse_config(R"({"listen": {"port": 5432}, "upstream": {"host": "db"}})"));
}

TEST_CASE("upstream: one host as before, or several in libpq's multi-host order") {
  const Config one = parse_config(R"({"upstream": {"host": "db", "port": 5433}})");
  REQUIRE(one.upstream.hosts.size() == 1);
  CHECK_FALSE(one.upstream.several());
  CHECK(endpoint_text(one.upstream) == "db:5433");

  const Config two = parse_config(R"({"upstream": {"hosts": [{"host": "pg1"},
      {"host": "pg2", "port": 5434}], "port": 5433, "check_seconds": 0.5}})");
  REQUIRE(two.upstream.hosts.size() == 2);
  CHECK(two.upstream.several());
  CHECK(two.upstream.hosts[0] == Endpoint{"pg1", 5433});  // upstream.port is every host's default
  CHECK(two.upstream.hosts[1] == Endpoint{"pg2", 5434});
  CHECK(two.upstream.target_session_attrs == TargetSessionAttrs::read_write);
  CHECK(two.upstream.check_seconds == 0.5);
  CHECK(endpoint_text(two.upstream) == "pg1:5433,pg2:5434");
  const Config any = parse_config(
      R"({"upstream": {"hosts": [{"host": "a"}, {"host": "b"}], "target_session_attrs": "any"}})");
  CHECK(any.upstream.target_session_attrs == TargetSessionAttrs::any);

  check_error(R"({"upstream": {"host": "a", "hosts": [{"host": "b"}]}})", "upstream.hosts",
              "cannot be combined with upstream.host");
  check_error(R"({"upstream": {"hosts": []}})", "upstream.hosts", "non-empty array");
  check_error(R"({"upstream": {"hosts": ["a,b"]}})", "upstream.hosts[0]", "an object with keys");
  check_error(R"({"upstream": {"hosts": [{"port": 1}]}})", "upstream.hosts[0].host",
              "required key is missing");
  check_error(R"({"upstream": {"hosts": [{"host": "a"}, {"host": "a", "port": 5432}]}})",
              "upstream.hosts[1]", "a:5432 is already listed at upstream.hosts[0]");
  check_error(R"({"upstream": {"hosts": [{"host": "a"}], "target_session_attrs": "read-only"}})",
              "upstream.target_session_attrs", R"(one of "read-write", "any")");
  check_error(R"({"upstream": {"check_seconds": 0}})", "upstream.check_seconds", "");
  check_error(R"({"listen": {"port": 6000}, "upstream": {"hosts": [{"host": "a"},
      {"host": "127.0.0.1", "port": 6000}]}})",
              "upstream", "is the proxy's own listen address");
}

TEST_CASE("validation: cost bounds with defaults, each checked") {
  const Config defaults = parse_config("{}");
  CHECK(defaults.validation.statement_timeout_seconds == 2.0);
  CHECK(defaults.validation.sample_rows == 10);
  CHECK(defaults.validation.max_cost_ratio == 10000.0);
  CHECK(defaults.validation.cost_action == CostAction::refuse);
  const Config set = parse_config(R"({"validation": {"statement_timeout_seconds": 0.5,
      "sample_rows": 100, "max_cost_ratio": 50, "cost_action": "warn"}})");
  CHECK(set.validation.statement_timeout_seconds == 0.5);
  CHECK(set.validation.sample_rows == 100);
  CHECK(set.validation.max_cost_ratio == 50.0);
  CHECK(set.validation.cost_action == CostAction::warn);
  check_error(R"({"validation": {"max_cost_ratio": 0.5}})", "validation.max_cost_ratio",
              "a number from 1 to 1e12");
  check_error(R"({"validation": {"max_cost_ratio": "high"}})", "validation.max_cost_ratio", "");
  check_error(R"({"validation": {"sample_rows": 0}})", "validation.sample_rows", "");
  check_error(R"({"validation": {"cost_action": "warm"}})", "validation.cost_action",
              R"(did you mean "warn"?)");
  check_error(R"({"validation": {"limit": 1}})", "validation.limit", "");
}

TEST_CASE("ConfigError joins field and message") {
  const ConfigError with_field("listen.port", "expected an integer");
  CHECK(with_field.field() == "listen.port");
  CHECK(std::string(with_field.what()) == "listen.port: expected an integer");
  const ConfigError without_field("", "the configuration is empty");
  CHECK(without_field.field().empty());
  CHECK(std::string(without_field.what()) == "the configuration is empty");
}

TEST_CASE("files are read, and unreadable ones are reported") {
  const auto directory = std::filesystem::temp_directory_path() /
                         ("seedproxy_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(directory);
  const auto path = directory / "ok.json";
  {
    std::ofstream out(path);
    out << R"({"listen": {"port": 7777}})";
  }
  CHECK(load_config_file(path).listen.port == 7777);

  const auto missing = directory / "missing.json";
  try {
    (void)load_config_file(missing);
    FAIL("read a missing file");
  } catch (const ConfigError& error) {
    CHECK(error.field().empty());
    CHECK(std::string(error.what()) ==
          "cannot read configuration file \"" + missing.string() + "\": No such file or directory");
  }
  try {
    (void)load_config_file(directory);
    FAIL("read a directory");
  } catch (const ConfigError& error) {
    CHECK(error.field().empty());
    CHECK(std::string(error.what()).find("Is a directory") != std::string::npos);
  }
  {
    std::ofstream out(path);
    out << "{\"listen\": {\"port\": \"x\"}}";
  }
  try {
    (void)load_config_file(path);
    FAIL("accepted a bad file");
  } catch (const ConfigError& error) {
    CHECK(error.field() == "listen.port");
  }
  std::filesystem::remove_all(directory);
}

TEST_CASE("enumerations print as they are spelled in the file") {
  CHECK(to_string(MaterializePolicy::threshold) == "threshold");
  CHECK(to_string(MaterializePolicy::never) == "never");
  CHECK(to_string(MaterializePolicy::manual) == "manual");
  CHECK(to_string(LogLevel::debug) == "debug");
  CHECK(to_string(LogLevel::info) == "info");
  CHECK(to_string(LogLevel::warning) == "warning");
  CHECK(to_string(LogLevel::error) == "error");
  for (const auto policy :
       {MaterializePolicy::threshold, MaterializePolicy::never, MaterializePolicy::manual}) {
    const std::string text =
        one_seed("materialize", "{\"policy\": \"" + std::string(to_string(policy)) + "\"}");
    CHECK(parse_config(text).seeds.at(0).materialize.policy == policy);
  }
  for (const auto level : {LogLevel::debug, LogLevel::info, LogLevel::warning, LogLevel::error}) {
    const std::string text = "{\"log\": {\"level\": \"" + std::string(to_string(level)) + "\"}}";
    CHECK(parse_config(text).log.level == level);
  }
}

TEST_CASE("registry: lease and refresh period, with bounds") {
  const auto defaults = parse_config("{}");
  CHECK(defaults.registry.lease_seconds == 5.0);
  CHECK(defaults.registry.refresh_seconds == 30.0);
  CHECK(defaults.warnings.empty());
  const auto set = parse_config(R"({"registry": {"lease_seconds": 2.5, "refresh_seconds": 10}})");
  CHECK(set.registry.lease_seconds == 2.5);
  CHECK(set.registry.refresh_seconds == 10.0);
  check_error(R"({"registry": {"lease_seconds": 0.2}})", "registry.lease_seconds",
              "shorter than 0.5 s");
  check_error(R"({"registry": {"lease_seconds": 0}})", "registry.lease_seconds", "greater than 0");
  check_error(R"({"registry": {"lease": 5}})", "registry.lease", "lease_seconds");
}

TEST_CASE("materialization.latency_allowance_seconds: 0 by default, never negative") {
  CHECK(parse_config("{}").materialization.latency_allowance_seconds == 0.0);
  CHECK(parse_config(R"({"materialization": {"latency_allowance_seconds": 0.002}})")
            .materialization.latency_allowance_seconds == 0.002);
  check_error(R"({"materialization": {"latency_allowance_seconds": -1}})",
              "materialization.latency_allowance_seconds", "a number of seconds between 0");
  check_error(R"({"materialization": {"latency_allowance_seconds": "2ms"}})",
              "materialization.latency_allowance_seconds", "a number of seconds between 0");
}

TEST_CASE("materialization.latency_ratio: 0 turns the guard off, below 1.05 is refused") {
  CHECK(parse_config("{}").materialization.latency_ratio == 1.4);
  CHECK(
      parse_config(R"({"materialization": {"latency_ratio": 0}})").materialization.latency_ratio ==
      0.0);
  CHECK(
      parse_config(R"({"materialization": {"latency_ratio": 2}})").materialization.latency_ratio ==
      2.0);
  check_error(R"({"materialization": {"latency_ratio": 1}})", "materialization.latency_ratio",
              "between 1.05 and 100");
  check_error(R"({"materialization": {"latency_ratio": "fast"}})", "materialization.latency_ratio",
              "0 (off)");
}

TEST_CASE("materialization.phase_grace_seconds still loads, ignored, with a warning naming it") {
  const auto config = parse_config(R"({"materialization": {"phase_grace_seconds": 2}})");
  REQUIRE(config.warnings.size() == 1);
  CHECK(config.warnings[0].starts_with("materialization.phase_grace_seconds is deprecated"));
  CHECK(config.warnings[0].find("acknowledged") != std::string::npos);
  // Its value is still checked, so a file that was wrong stays wrong.
  check_error(R"({"materialization": {"phase_grace_seconds": -1}})",
              "materialization.phase_grace_seconds", "got -1");
}
