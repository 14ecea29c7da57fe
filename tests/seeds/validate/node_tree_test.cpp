// The node text reader: nesting, lists with tags, strings with escapes, datums, <>; refusal of
// text that is not node text.
#include "seeds/validate/node_tree.hpp"

#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

using namespace seedproxy::seeds;

TEST_CASE("nodes, fields, typed lists, strings and datums") {
  const TreeValue root = read_node_tree(
      R"(({QUERY :rtable ({RANGETBLENTRY :eref {ALIAS :aliasname a\ b :colnames ("id" "x\"y")}
       :selectedCols (b 8 9)}) :limitCount <> :targetList ({TARGETENTRY :expr {CONST :consttype 23
       :constvalue 4 [ 3 0 0 0 0 0 0 0 ]} :resno 1}) :joinleftcols (i 1 2)}))");
  REQUIRE(root.kind == TreeValue::Kind::list);
  REQUIRE(root.items.size() == 1);
  const PgNode* query = root.items[0].as_node();
  REQUIRE(query);
  CHECK(query->kind == "QUERY");
  const auto rtable = query->items("rtable");
  REQUIRE(rtable.size() == 1);
  const PgNode* eref = rtable[0].as_node()->child("eref");
  REQUIRE(eref);
  CHECK(eref->scalar("aliasname") == "a b");
  const auto names = eref->items("colnames");
  REQUIRE(names.size() == 2);
  CHECK(names[1].text == "x\"y");
  CHECK(rtable[0].as_node()->field("selectedCols")->text == "b");
  CHECK(rtable[0].as_node()->items("selectedCols").size() == 2);
  CHECK(query->field("limitCount")->kind == TreeValue::Kind::null);
  CHECK(query->child("limitCount") == nullptr);
  const PgNode* constant = query->items("targetList")[0].as_node()->child("expr");
  REQUIRE(constant);
  CHECK(constant->integer("consttype") == 23);
  CHECK(constant->scalar("constvalue") == "4 [ 3 0 0 0 0 0 0 0 ]");
  CHECK(query->items("joinleftcols").size() == 2);
  CHECK(query->integer("missing", -7) == -7);
  int nodes = 0;
  walk_nodes(root, [&](const PgNode&) {
    ++nodes;
    return true;
  });
  CHECK(nodes == 5);  // QUERY, RANGETBLENTRY, ALIAS, TARGETENTRY, CONST
}

TEST_CASE("a braced token cannot be faked inside a name or a string") {
  const TreeValue root = read_node_tree(R"({VAR :name a\}\{b :s "{x}"})");
  const PgNode* node = root.as_node();
  REQUIRE(node);
  CHECK(node->scalar("name") == "a}{b");
  CHECK(node->scalar("s") == "{x}");
}

TEST_CASE("text that is not node text is refused") {
  CHECK_THROWS_AS((void)read_node_tree("{QUERY :a 1"), std::runtime_error);
  CHECK_THROWS_AS((void)read_node_tree("(1 2"), std::runtime_error);
  CHECK_THROWS_AS((void)read_node_tree("{QUERY a 1}"), std::runtime_error);
  CHECK_THROWS_AS((void)read_node_tree("{X} {Y}"), std::runtime_error);
  CHECK_THROWS_AS((void)read_node_tree("\"open"), std::runtime_error);
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += '(';
  CHECK_THROWS_AS((void)read_node_tree(deep), std::runtime_error);
}
