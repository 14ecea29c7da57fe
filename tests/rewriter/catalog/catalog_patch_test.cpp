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

namespace {
// "t" + std::to_string(i) trips GCC 12's -Wrestrict false positive.
std::string named(const char* prefix, int i) {
  std::string out = prefix;
  out += std::to_string(i);
  return out;
}
}  // namespace

TEST_CASE("a catalog changed by many DDL in a row agrees with one built from scratch") {
  std::vector<Relation> relations;
  for (int i = 0; i < 50; ++i) relations.push_back({"public", named("t", i), {"a"}});
  const Catalog start(relations, 1);
  Catalog now = start;
  // Each step renames one table and widens another: more steps than the changes kept unfolded.
  for (int i = 0; i < 40; ++i) {
    now = now.replaced("public", named("t", i), {"public", named("r", i), {"a"}},
                       2 + static_cast<unsigned>(i));
    const auto* other = now.find("public", named("t", 49 - i % 5));
    REQUIRE(other);
    Relation wider = *other;
    wider.columns.push_back(named("c", i));
    now = now.replaced(wider.schema, wider.name, wider, 100 + static_cast<unsigned>(i));
    CHECK(now.size() == 50);
  }
  for (int i = 0; i < 40; ++i) {
    CHECK_FALSE(now.find("public", named("t", i)));
    CHECK(now.find("public", named("r", i)));
  }
  CHECK(now.find("public", "t45")->columns.size() == 9);
  CHECK(start.find("public", "t0"));  // the first catalog is unchanged
  CHECK(start.find("public", "t45")->columns.size() == 1);
  // A patch drops a name from the base and from the changes alike.
  const std::vector<std::string> names{"r3", "t45"};
  const Catalog patched = now.patched(names, {{"other", "r3", {"x"}}}, 200);
  CHECK_FALSE(patched.find("public", "r3"));
  CHECK_FALSE(patched.find("public", "t45"));
  CHECK(patched.find("other", "r3"));
  CHECK(patched.size() == 49);
  const std::vector<std::string> none{"absent"};
  CHECK(Catalog().patched(none, {{"public", "x", {}}}, 1).size() == 1);
}
