// PostgreSQL identifiers: quoting for generated SQL and the folding of dotted names.
#include "common/identifiers.hpp"

#include <doctest/doctest.h>

using namespace seedproxy::pg;

TEST_CASE("identifiers are always quoted, embedded quotes doubled") {
  CHECK(quote_identifier("risk_score") == "\"risk_score\"");
  CHECK(quote_identifier("Odd \"name\"") == "\"Odd \"\"name\"\"\"");
  CHECK(quote_identifier("") == "\"\"");
}

TEST_CASE("a comment's text cannot end it or open a nested one") {
  CHECK(sql_comment("refused") == "/* refused */");
  CHECK(sql_comment("column \"a*/b\" /*x") == "/* column \"a* /b\" / *x */");
  CHECK(sql_comment("*/*/") == "/* * / * / */");
  CHECK(sql_comment("two\nlines") == "/* two lines */");
}

TEST_CASE("dotted names fold unquoted parts and keep quoted ones") {
  const auto parts = split_qualified_name("Bank.\"My.Schema\".Account");
  REQUIRE(parts);
  CHECK(*parts == std::vector<std::string>{"bank", "My.Schema", "account"});
  CHECK(split_qualified_name("\"a\"\"b\"")->front() == "a\"b");
  CHECK_FALSE(split_qualified_name("a..b"));
  CHECK_FALSE(split_qualified_name("a."));
  CHECK_FALSE(split_qualified_name("\"open"));
  CHECK_FALSE(split_qualified_name(""));
}

TEST_CASE("an entity is table or schema.table, schema public by default") {
  std::string schema, table;
  REQUIRE(split_entity("Account", schema, table));
  CHECK(schema == "public");
  CHECK(table == "account");
  REQUIRE(split_entity("\"Sales\".orders", schema, table));
  CHECK(schema == "Sales");
  CHECK(table == "orders");
  CHECK_FALSE(split_entity("a.b.c", schema, table));
}
