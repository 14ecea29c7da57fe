// The dependency analysis of cross-table seeds through the validator, against a real PostgreSQL
// (run_with_postgres.py): aggregates, lookups, chains of joins, outer joins, mixed types; and the
// sentence for every expression whose dependencies cannot be bounded.
#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <variant>

#include "common/identifiers.hpp"
#include "seeds/validate/validator.hpp"
#include "tests/seeds/test_postgres.hpp"

using namespace seedproxy::seeds;

namespace {

ControlTarget target() { return testing::test_target(); }
using testing::env;

constexpr const char* kDatabase = "deps_analysis";

ControlConnection& connection() {
  static std::unique_ptr<ControlConnection> c = [] {
    {
      ControlConnection admin(target(), "postgres");
      (void)admin.query("drop", "DROP DATABASE IF EXISTS " + std::string(kDatabase));
      (void)admin.query("create", "CREATE DATABASE " + std::string(kDatabase));
    }
    auto out = std::make_unique<ControlConnection>(target(), kDatabase);
    for (const char* statement :
         {"CREATE TABLE country (id int PRIMARY KEY, name text)",
          "CREATE TABLE region (id int PRIMARY KEY, name text NOT NULL, country_id int)",
          "CREATE TABLE customer (id int PRIMARY KEY, region_id int, segment text, email text)",
          "CREATE TABLE account (id int PRIMARY KEY, customer_id int, balance numeric, "
          "email text, opened date)",
          "CREATE TABLE txn (id bigserial PRIMARY KEY, account_id bigint, amount numeric, "
          "kind text, booked date)",
          "CREATE VIEW txn_view AS SELECT * FROM txn",
          "CREATE MATERIALIZED VIEW txn_mat AS SELECT * FROM txn",
          "CREATE TABLE part (account_id int, amount numeric) PARTITION BY RANGE (account_id)",
          "CREATE TABLE parent (account_id int, amount numeric)",
          "CREATE TABLE child () INHERITS (parent)"})
      (void)out->query("setup", statement);
    return out;
  }();
  return *c;
}

std::variant<ValidatedSeed, Refusal> check(const std::string& expression,
                                           const std::string& type = "bigint") {
  seedproxy::config::SeedSpec spec;
  spec.database = kDatabase;
  spec.entity = "account";
  spec.attribute = "derived";
  spec.type = type;
  spec.expression = expression;
  return validate_seed(connection(), spec);
}

// The seed, which must be accepted and cross-table.
SeedDependencies dependencies(const std::string& expression, const std::string& type = "bigint") {
  const auto result = check(expression, type);
  if (const auto* refusal = std::get_if<Refusal>(&result)) FAIL(refusal->message);
  const auto& seed = std::get<ValidatedSeed>(result);
  REQUIRE(seed.cross_table);
  return seed.dependencies;
}

// The sentence why the seed stays virtual (accepted, but not materializable).
std::string refusal(const std::string& expression, const std::string& type = "bigint") {
  const auto found = dependencies(expression, type);
  CHECK(!found.refusal.empty());
  return found.refusal;
}

}  // namespace

TEST_CASE("an aggregate correlated by equality: one table, keyed by the row's id") {
  const auto d = dependencies("(SELECT count(*) FROM txn t WHERE t.account_id = account.id)");
  CHECK(d.refusal == "");
  REQUIRE(d.tables.size() == 1);
  const auto& txn = d.tables[0];
  CHECK(txn.schema == "public");
  CHECK(txn.table == "txn");
  CHECK(txn.columns == std::vector<std::string>{"account_id"});
  REQUIRE(txn.mappings.size() == 1);
  CHECK(txn.mappings[0].path.empty());
  REQUIRE(txn.mappings[0].key.size() == 1);
  const auto& key = txn.mappings[0].key[0];
  CHECK(key.seed_column == "id");
  CHECK(key.column == "account_id");
  // int8 = int4: each side hashed by its own type's function of the integer family
  CHECK(key.type == "bigint");
  CHECK(key.seed_type == "integer");
  CHECK(key.hash == "pg_catalog.hashint8");
  CHECK(key.seed_hash == "pg_catalog.hashint4");
  CHECK(key.operator_sql == "OPERATOR(pg_catalog.=)");
  CHECK(d.seed_columns == std::vector<std::string>{"id"});
  CHECK(d.describe("account") == "public.txn: txn.account_id = account.id");
}

TEST_CASE("aggregates, lookups and the row's own columns combined") {
  const auto d = dependencies(
      "coalesce((SELECT sum(t.amount) FILTER (WHERE t.kind = 'fee') FROM txn t "
      "WHERE t.account_id = account.id AND t.amount > account.balance), 0) + balance "
      "+ length((SELECT c.segment FROM customer c WHERE c.id = account.customer_id))",
      "numeric");
  CHECK(d.refusal == "");
  REQUIRE(d.tables.size() == 2);
  CHECK(d.tables[0].table == "customer");
  CHECK(d.tables[0].columns == std::vector<std::string>{"id", "segment"});
  CHECK(d.tables[0].mappings[0].key[0].seed_column == "customer_id");
  CHECK(d.tables[1].table == "txn");
  CHECK(d.tables[1].columns == std::vector<std::string>{"account_id", "amount", "kind"});
  // the row's inputs: its own columns, correlation and filter columns included
  CHECK(d.seed_columns == std::vector<std::string>{"id", "customer_id", "balance"});
}

TEST_CASE("a chain of lookups through joins, inner and outer") {
  for (const char* join : {"JOIN", "LEFT JOIN"}) {
    CAPTURE(join);
    const auto d = dependencies(std::string("(SELECT r.name FROM customer c ") + join +
                                    " region r ON r.id = c.region_id "
                                    "WHERE c.id = account.customer_id)",
                                "text");
    CHECK(d.refusal == "");
    REQUIRE(d.tables.size() == 2);
    const auto& region = d.tables[1];
    CHECK(region.table == "region");
    REQUIRE(region.mappings.size() == 1);
    REQUIRE(region.mappings[0].path.size() == 1);
    CHECK(region.mappings[0].path[0].table == "customer");
    CHECK(region.mappings[0].path[0].on ==
          std::vector<std::pair<std::string, std::string>>{{"id", "region_id"}});
    CHECK(region.mappings[0].key[0].column == "id");
    CHECK(region.mappings[0].key[0].seed_column == "customer_id");
    CHECK(d.describe("account") ==
          "public.customer: customer.id = account.customer_id; public.region: customer.region_id "
          "= region.id, customer.id = account.customer_id");
  }
  // USING and comma joins give the same chain
  const auto d = dependencies(
      "(SELECT r.name FROM customer c, region r WHERE r.id = c.region_id AND "
      "c.id = account.customer_id)",
      "text");
  CHECK(d.refusal == "");
  CHECK(d.tables.size() == 2);
}

TEST_CASE("a chain of lookups nested in each other is the same chain as the join") {
  const std::string joined =
      "public.customer: customer.id = account.customer_id; public.region: customer.region_id "
      "= region.id, customer.id = account.customer_id";
  // the lookup in the WHERE of the other, and in its SELECT list
  for (const char* nested :
       {"(SELECT r.name FROM region r WHERE r.id = (SELECT c.region_id FROM customer c "
        "WHERE c.id = account.customer_id))",
        "(SELECT r.name FROM region r WHERE (SELECT c.region_id FROM customer c "
        "WHERE account.customer_id = c.id) = r.id AND r.name <> '')",
        "(SELECT (SELECT r.name FROM region r WHERE r.id = c.region_id) FROM customer c "
        "WHERE c.id = account.customer_id)"}) {
    CAPTURE(nested);
    const auto d = dependencies(nested, "text");
    CHECK(d.refusal == "");
    CHECK(d.describe("account") == joined);
    REQUIRE(d.tables.size() == 2);
    const auto& region = d.tables[1];
    REQUIRE(region.mappings.size() == 1);
    REQUIRE(region.mappings[0].path.size() == 1);
    const auto& step = region.mappings[0].path[0];
    REQUIRE(step.equalities.size() == 1);
    CHECK(step.equalities[0].from_hash == "pg_catalog.hashint4");
    CHECK(step.equalities[0].to_hash == "pg_catalog.hashint4");
    CHECK(d.tables[0].columns == std::vector<std::string>{"id", "region_id"});
    CHECK(region.columns == std::vector<std::string>{"id", "name"});
  }
  // an aggregate over the end of the chain, nested in the middle's SELECT list
  const auto d = dependencies(
      "(SELECT (SELECT count(*) FROM txn t WHERE t.account_id = c.region_id) FROM customer c "
      "WHERE c.id = account.customer_id)");
  CHECK(d.refusal == "");
  CHECK(d.describe("account") ==
        "public.customer: customer.id = account.customer_id; public.txn: customer.region_id = "
        "txn.account_id, customer.id = account.customer_id");
}

TEST_CASE("chains that are deeper, mixed or untied stay virtual, with the reason") {
  CHECK(refusal("(SELECT k.name FROM customer c JOIN region r ON r.id = c.region_id JOIN country k "
                "ON k.id = r.country_id WHERE c.id = account.customer_id)",
                "text")
            .find("through 2 middle tables") != std::string::npos);
  CHECK(refusal("(SELECT k.name FROM country k WHERE k.id = (SELECT r.country_id FROM region r "
                "WHERE r.id = (SELECT c.region_id FROM customer c WHERE c.id = "
                "account.customer_id)))",
                "text")
            .find("nested in a subquery contains another subquery") != std::string::npos);
  CHECK(refusal("(SELECT r.name FROM customer c JOIN region r ON r.id = c.region_id WHERE c.id = "
                "account.customer_id) || (SELECT r2.name FROM region r2 WHERE r2.id = account.id)",
                "text")
            .find("both directly and through a chain") != std::string::npos);
  // the outer rows are read whatever the nested lookup finds: customer is not tied through region
  CHECK(refusal("(SELECT r.name FROM region r WHERE r.id = (SELECT c.region_id FROM customer c "
                "WHERE c.id > account.customer_id))",
                "text")
            .find("not tied") != std::string::npos);
  CHECK(refusal("(SELECT (SELECT count(*) FROM txn t WHERE t.amount > c.region_id) FROM customer c "
                "WHERE c.id = account.customer_id)")
            .find("public.txn (as t)") != std::string::npos);
  CHECK(refusal("(SELECT r.name FROM region r WHERE r.id = (SELECT c.region_id + 1 FROM "
                "customer c WHERE c.id = account.customer_id))",
                "text")
            .find("not tied") != std::string::npos);
}

TEST_CASE("EXISTS and a table read twice under two correlations") {
  const auto d = dependencies(
      "(EXISTS (SELECT 1 FROM txn t WHERE t.account_id = account.id AND t.kind = 'block'))::int "
      "+ (SELECT count(*) FROM txn t2 WHERE t2.account_id = account.customer_id)");
  CHECK(d.refusal == "");
  REQUIRE(d.tables.size() == 1);
  CHECK(d.tables[0].mappings.size() == 2);
}

TEST_CASE("dependencies that cannot be bounded are named, and the seed stays usable") {
  CHECK(refusal("(SELECT count(*) FROM txn t WHERE t.amount > account.balance)")
            .find("not tied to the seed's row by a chain of equalities") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn t WHERE t.amount > account.balance)")
            .find("t.amount with account.balance") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn)").find("public.txn (as txn)") != std::string::npos);
  CHECK(refusal("(SELECT t.amount FROM txn t WHERE t.account_id = account.id LIMIT 1)", "numeric")
            .find("LIMIT") != std::string::npos);
  CHECK(refusal("(SELECT max(t.amount) FROM txn t WHERE t.account_id = account.id "
                "GROUP BY t.kind ORDER BY 1 LIMIT 1)",
                "numeric")
            .find("LIMIT") != std::string::npos);
  CHECK(refusal("(SELECT sum(s.x) FROM (SELECT t.amount AS x FROM txn t WHERE t.account_id = "
                "account.id ORDER BY t.id) s)",
                "numeric")
            .find("another subquery (in FROM)") != std::string::npos);
  CHECK(refusal("(SELECT max(w.rn) FROM (SELECT 1) s, LATERAL (SELECT row_number() OVER () AS rn "
                "FROM txn t WHERE t.account_id = account.id) w)")
            .find("another subquery") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn t, generate_series(1, 3) g WHERE t.account_id = "
                "account.id)")
            .find("function in FROM") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn_view t WHERE t.account_id = account.id)")
            .find("public.txn_view, which is a view") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn_mat t WHERE t.account_id = account.id)")
            .find("materialized view") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM part p WHERE p.account_id = account.id)")
            .find("partitioned table") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM parent p WHERE p.account_id = account.id)")
            .find("inheritance children") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM account a WHERE a.customer_id = account.customer_id)")
            .find("the seed's own table") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn t WHERE t.account_id = (SELECT max(id) FROM "
                "customer c WHERE c.id = account.customer_id))")
            .find("nested subquery that aggregates") != std::string::npos);
  // (IN and ANY compare through a parameter, which the determinism rule already refuses)
  CHECK(refusal("cardinality(ARRAY(SELECT t.id FROM txn t WHERE t.account_id = account.id))")
            .find("IN, ANY, ALL, ARRAY") != std::string::npos);
  CHECK(refusal("(SELECT count(*) FROM txn t FULL JOIN customer c ON c.id = t.account_id "
                "WHERE c.id = account.customer_id)")
            .find("public.txn (as t)") != std::string::npos);
  // an outer join ties its nullable side to the preserved one, not the other way round
  CHECK(refusal("(SELECT count(*) FROM txn t LEFT JOIN customer c ON c.id = account.customer_id "
                "AND t.account_id = c.id)")
            .find("public.txn (as t)") != std::string::npos);
  // a correlation by an expression rather than a column
  CHECK(refusal("(SELECT count(*) FROM customer c WHERE lower(c.email) = account.email)")
            .find("not tied") != std::string::npos);
}

TEST_CASE("a row-local seed has no dependencies") {
  const auto result = check("balance * 2", "numeric");
  REQUIRE(std::holds_alternative<ValidatedSeed>(result));
  CHECK(!std::get<ValidatedSeed>(result).cross_table);
  CHECK(std::get<ValidatedSeed>(result).dependencies.tables.empty());
}
