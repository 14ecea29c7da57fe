// predicted_snapshot: an ALTER TABLE applied to one relation of a snapshot, and every case where
// only the refresh is right (null).
#include "seeds/registry/predicted_snapshot.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rewriter/statements/catalog_effect.hpp"

namespace {

using seedproxy::rewriter::Relation;
using seedproxy::seeds::DatabaseSnapshot;

Relation table(std::string schema, std::string name, std::vector<std::string> columns,
               std::vector<int> attnums, int natts, bool children = false) {
  Relation relation(std::move(schema), std::move(name), std::move(columns), std::move(attnums));
  relation.natts = natts;
  relation.may_have_children = children;
  return relation;
}

DatabaseSnapshot snapshot_of(std::vector<Relation> relations) {
  DatabaseSnapshot snapshot;
  snapshot.catalog = seedproxy::rewriter::Catalog(std::move(relations), 1);
  snapshot.active = true;
  snapshot.registry = true;
  snapshot.version = 1;
  return snapshot;
}

std::shared_ptr<const DatabaseSnapshot> after(const DatabaseSnapshot& before,
                                              const std::string& sql,
                                              std::vector<std::string> path = {"public"}) {
  const auto effect = seedproxy::rewriter::catalog_effect(sql);
  REQUIRE(effect.prediction);
  return seedproxy::seeds::predicted_snapshot(before, *effect.prediction, path, 7);
}

}  // namespace

TEST_CASE("columns added after dropped ones get the next attnum; drops and renames keep them") {
  // Column 2 was dropped and so was column 4 (the last): relnatts still counts them.
  const auto before = snapshot_of({table("public", "t", {"a", "c"}, {1, 3}, 4)});
  auto added = after(before, "ALTER TABLE t ADD COLUMN d int, DROP COLUMN a");
  REQUIRE(added);
  CHECK(added->version == 7);
  const auto* t = added->catalog.find("public", "t");
  REQUIRE(t);
  CHECK(t->columns == std::vector<std::string>{"c", "d"});
  CHECK(t->attnums == std::vector<int>{3, 5});
  CHECK(t->natts == 5);
  auto renamed = after(*added, "ALTER TABLE public.t RENAME COLUMN c TO e");
  REQUIRE(renamed);
  CHECK(renamed->catalog.find("public", "t")->columns == std::vector<std::string>{"e", "d"});
  auto moved = after(*renamed, "ALTER TABLE t RENAME TO u");
  REQUIRE(moved);
  CHECK_FALSE(moved->catalog.find("public", "t"));
  CHECK(moved->catalog.find("public", "u")->attnums == std::vector<int>{3, 5});
  // IF [NOT] EXISTS that found nothing to do changes nothing.
  auto quiet =
      after(before, "ALTER TABLE t ADD COLUMN IF NOT EXISTS a int, DROP COLUMN IF EXISTS z");
  REQUIRE(quiet);
  CHECK(quiet->catalog.find("public", "t")->columns == std::vector<std::string>{"a", "c"});
}

TEST_CASE("the search_path picks the relation; another schema's of the same name is kept") {
  const auto before =
      snapshot_of({table("public", "t", {"a"}, {}, 1), table("app", "t", {"a"}, {}, 1)});
  auto changed = after(before, "ALTER TABLE t ADD COLUMN b int", {"app", "public"});
  REQUIRE(changed);
  CHECK(changed->catalog.find("app", "t")->columns == std::vector<std::string>{"a", "b"});
  CHECK(changed->catalog.find("public", "t")->columns == std::vector<std::string>{"a"});
}

TEST_CASE("what a catalog cannot predict is left to the refresh") {
  auto view = table("public", "v", {"a"}, {}, 1);
  view.kind = 'v';
  const auto before = snapshot_of({table("public", "parent", {"a"}, {}, 1, true),
                                   table("public", "t", {"a"}, {}, 1),
                                   table("public", "unknown_natts", {"a"}, {}, -1), view});
  // Inheritance children or partitions change with their parent; a rename of the parent does not.
  CHECK_FALSE(after(before, "ALTER TABLE parent ADD COLUMN b int"));
  CHECK_FALSE(after(before, "ALTER TABLE parent RENAME COLUMN a TO b"));
  CHECK(after(before, "ALTER TABLE parent RENAME TO elder"));
  CHECK_FALSE(after(before, "ALTER TABLE missing ADD COLUMN b int"));
  CHECK_FALSE(after(before, "ALTER TABLE unknown_natts ADD COLUMN b int"));
  CHECK_FALSE(after(before, "ALTER TABLE v RENAME TO w"));
  // The statement succeeded, yet the catalog says it could not have: the catalog is behind.
  CHECK_FALSE(after(before, "ALTER TABLE t ADD COLUMN a int"));
  CHECK_FALSE(after(before, "ALTER TABLE t DROP COLUMN b"));
  CHECK_FALSE(after(before, "ALTER TABLE t RENAME COLUMN b TO c"));
  CHECK_FALSE(after(before, "ALTER TABLE t RENAME TO parent"));
}
