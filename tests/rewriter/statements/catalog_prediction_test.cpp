// catalog_prediction: which ALTER TABLE statements are read precisely enough to apply without
// reading the catalog, and what is read from them.
#include "rewriter/statements/catalog_prediction.hpp"

#include <doctest/doctest.h>

#include <optional>
#include <string>

#include "rewriter/statements/catalog_effect.hpp"

using seedproxy::rewriter::catalog_effect;
using seedproxy::rewriter::CatalogPrediction;
using seedproxy::rewriter::ColumnChange;
using Kind = seedproxy::rewriter::ColumnChange::Kind;

namespace {

std::optional<CatalogPrediction> predicted(const std::string& sql) {
  return catalog_effect(sql).prediction;
}

}  // namespace

TEST_CASE("ADD, DROP and RENAME COLUMN and RENAME TO of a table are predicted") {
  auto add = predicted("ALTER TABLE s.\"Account\" ADD COLUMN note text, DROP COLUMN IF EXISTS old");
  REQUIRE(add);
  CHECK(add->schema == "s");
  CHECK(add->relation == "Account");
  CHECK(add->columns ==
        std::vector<ColumnChange>{{Kind::add, "note", "", false}, {Kind::drop, "old", "", true}});
  CHECK(add->new_name.empty());

  auto quiet = predicted("alter table if exists account add if not exists Extra int");
  REQUIRE(quiet);
  CHECK(quiet->schema.empty());
  CHECK(quiet->missing_ok);
  CHECK(quiet->columns == std::vector<ColumnChange>{{Kind::add, "extra", "", true}});

  auto column = predicted("ALTER TABLE account RENAME COLUMN a TO b");
  REQUIRE(column);
  CHECK(column->columns == std::vector<ColumnChange>{{Kind::rename, "a", "b", false}});

  auto table = predicted("ALTER TABLE account RENAME TO ledger");
  REQUIRE(table);
  CHECK(table->relation == "account");
  CHECK(table->new_name == "ledger");
  CHECK(table->columns.empty());
}

TEST_CASE("everything else is left to the refresh") {
  for (const char* sql : {
           "ALTER TABLE ONLY account ADD COLUMN x int",  // ONLY: children differ
           "ALTER TABLE account DROP COLUMN x CASCADE",  // views go too
           "ALTER TABLE account ADD COLUMN x int, ALTER COLUMN y TYPE text",
           "ALTER TABLE account ADD CONSTRAINT c CHECK (true)",  // no catalog effect
           "ALTER VIEW v RENAME COLUMN a TO b",                  // not a table
           "ALTER TABLE v RENAME CONSTRAINT a TO b",
           "ALTER TABLE account SET SCHEMA other",
           "ALTER TABLE account ADD COLUMN x int; ALTER TABLE account ADD COLUMN y int",
           "ALTER TABLE account ADD COLUMN x int; SELECT 1",
           "ALTER TABLE pg_temp.account ADD COLUMN x int",
           "CREATE TABLE t (a int)",
           "DROP TABLE account",
       }) {
    CAPTURE(sql);
    CHECK_FALSE(predicted(sql));
  }
}

TEST_CASE("merging two effects drops the prediction; an empty one keeps it") {
  auto effect = catalog_effect("ALTER TABLE account ADD COLUMN x int");
  REQUIRE(effect.prediction);
  auto kept = effect;
  kept.merge(catalog_effect("SELECT 1"));
  CHECK(kept.prediction);
  effect.merge(catalog_effect("ALTER TABLE other ADD COLUMN y int"));
  CHECK_FALSE(effect.prediction);
  seedproxy::rewriter::CatalogEffect empty;
  empty.merge(catalog_effect("ALTER TABLE account DROP COLUMN x"));
  CHECK(empty.prediction);
}
