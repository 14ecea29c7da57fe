// Catalog::patched: the catalog after DDL on some names, the other relations shared as they were.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rewriter/catalog/catalog.hpp"

using namespace seedproxy::rewriter;

TEST_CASE(
    "a patched catalog drops every relation of the names, in any schema, and adds the fresh") {
  const Catalog before({{"public", "account", {"id", "balance"}},
                        {"shadow", "account", {"id"}},
                        {"public", "ledger", {"id", "amount"}},
                        {"public", "old_name", {"a"}}},
                       1);
  const std::vector<std::string> names{"account", "new_name", "old_name"};  // sorted
  const Catalog after = before.patched(
      names, {{"public", "account", {"id", "balance", "note"}}, {"public", "new_name", {"a"}}}, 2);
  CHECK(after.version() == 2);
  CHECK(after.size() == 3);
  REQUIRE(after.find("public", "account"));
  CHECK(after.find("public", "account")->columns ==
        std::vector<std::string>{"id", "balance", "note"});
  CHECK_FALSE(after.find("shadow", "account"));   // dropped meanwhile
  CHECK_FALSE(after.find("public", "old_name"));  // renamed
  CHECK(after.find("public", "new_name"));
  // Untouched relations are the same objects, not copies.
  CHECK(after.find("public", "ledger") == before.find("public", "ledger"));
  // The original is unchanged.
  CHECK(before.find("public", "account")->columns.size() == 2);
  CHECK(before.find("shadow", "account"));
}

TEST_CASE(
    "a fresh relation whose name was not listed (a child of one that was) replaces its entry") {
  const Catalog before({{"public", "parent", {"a"}}, {"public", "child", {"a", "b"}}}, 1);
  const std::vector<std::string> names{"parent"};
  const Catalog after = before.patched(
      names, {{"public", "parent", {"a", "c"}}, {"public", "child", {"a", "b", "c"}}}, 2);
  CHECK(after.size() == 2);
  CHECK(after.find("public", "child")->columns == std::vector<std::string>{"a", "b", "c"});
}
