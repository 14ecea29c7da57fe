// JsonTree: the reader of libpg_query's JSON accepts exactly valid JSON and answers the accessors
// the resolver uses as nlohmann::json did.
#include "rewriter/parse/json_tree.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using seedproxy::rewriter::Json;
using seedproxy::rewriter::JsonTree;

TEST_CASE("JsonTree reads nested values, decodes escapes and sorts object keys") {
  const auto tree = JsonTree::read(
      R"( {"z": [1, -2, 3.5e1, true, false, null], "a": {"s": "q\"\\\/\n\u00e9\ud83d\ude00"},)"
      R"( "m": {}, "e": []} )");
  REQUIRE(tree.has_value());
  const Json& root = tree->root();
  REQUIRE(root.is_object());
  CHECK(root.size() == 4);
  std::string keys;
  for (const auto& [key, child] : root.items()) keys += std::string(key) + ",";
  CHECK(keys == "a,e,m,z,");  // the order nlohmann's std::map gave
  CHECK(root.begin().key() == "a");
  const Json& list = root["z"];
  REQUIRE(list.is_array());
  CHECK(list.size() == 6);
  CHECK(list[0].get<int>() == 1);
  CHECK(list[1].as_integer() == -2);
  CHECK(!list[2].is_number_integer());
  CHECK(list[3].as_boolean());
  CHECK(list[4].is_boolean());
  CHECK(list[5].is_null());
  CHECK(list[6].is_null());  // out of range reads as null
  CHECK(list.back().is_null());
  CHECK(root["a"]["s"] == "q\"\\/\n\xc3\xa9\xf0\x9f\x98\x80");
  CHECK(root["m"].is_object());
  CHECK(root["m"].empty());
  CHECK(root["e"].is_array());
  CHECK(root["missing"].is_null());
  CHECK(!root.contains("missing"));
  CHECK(root.value("missing", 7) == 7);
  CHECK(root.value("z", 7) == 7);  // wrong type: the default
  CHECK(root["a"].value("s", "x") != "x");
  CHECK(Json().size() == 0);
  CHECK(list[0].size() == 1);
}

TEST_CASE("JsonTree survives deep nesting without recursion") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const auto tree = JsonTree::read(deep);
  REQUIRE(tree.has_value());
  CHECK(tree->root().is_array());
}

TEST_CASE("JsonTree refuses what is not JSON") {
  const std::string_view bad[] = {"",
                                  "{",
                                  "[1,]",
                                  "{\"a\" 1}",
                                  "{\"a\":1,}",
                                  "01",
                                  "[1] x",
                                  "\"\x01\"",
                                  "\"\\x\"",
                                  "\"\\ud800\"",
                                  "\"\\udc00\"",
                                  "tru",
                                  "\"\xff\"",
                                  "\"\xc0\xaf\"",
                                  "\"\xed\xa0\x80\"",
                                  "\"\xe2\x82\"",
                                  "-",
                                  "1.",
                                  "{1:2}",
                                  "[\"a\"",
                                  "nul"};
  for (const auto text : bad) {
    INFO("text: ", std::string(text));
    CHECK(!JsonTree::read(text).has_value());
  }
}
