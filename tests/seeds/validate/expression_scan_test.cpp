// The validator's lexical gate and its reader of PostgreSQL's stored query trees, without a
// database.
#include "seeds/validate/expression_scan.hpp"

#include <doctest/doctest.h>

#include "seeds/validate/query_tree.hpp"

using seedproxy::seeds::read_query_tree;
using seedproxy::seeds::scan_pasted_text;

namespace {

std::string problem(std::string_view text, bool backslash_strings = false) {
  const auto scan = scan_pasted_text(text, backslash_strings);
  return scan.problem ? scan.problem->cause + " @" + std::to_string(scan.problem->offset) : "";
}

}  // namespace

TEST_CASE("expressions that stay inside their parentheses pass") {
  for (const char* ok : {"balance * 2", "(SELECT 1)", "f(a, b)", "a[1]", "'a;b--c/*d'",
                         "\"we;ird\"\"--name\"", "$$;--$$ || $x$ ) $x$", "a$1 + b", "E'it\\'s;'",
                         "'it''s' || ')'", "x -1", "(((1)))", "U&'d\\0061t'", "selection + 1"}) {
    CAPTURE(ok);
    CHECK(problem(ok).empty());
  }
}

TEST_CASE("what could escape is refused, with the culprit's offset") {
  CHECK(problem("1); DROP TABLE account; --") == "closes a parenthesis it did not open @1");
  CHECK(problem("1 + 1; DROP TABLE t") == "contains a statement separator ';' @5");
  CHECK(problem("balance /* ") == "contains a comment ('/*') @8");
  CHECK(problem("a -- b") == "contains a comment ('--') @2");
  CHECK(problem("(a") == "leaves a parenthesis open @0");
  CHECK(problem("a, b") == "is a list; a seed has exactly one expression @1");
  CHECK(problem("f(a, b), c") == "is a list; a seed has exactly one expression @7");
  CHECK(problem("a + $1").starts_with("contains a parameter placeholder"));
  CHECK(problem("'abc") == "has an unterminated string literal @0");
  CHECK(problem("\"abc") == "has an unterminated quoted identifier @0");
  CHECK(problem("$q$ abc $Q$") == "has an unterminated dollar-quoted string @0");
  CHECK(problem("  ") == "is empty @0");
  CHECK(problem(std::string_view("a\0b", 3)) == "contains a NUL byte @1");
  CHECK(problem(" SELECT 1").starts_with("is a query"));
  CHECK(problem("with x as (select 1) select 1").starts_with("is a query"));
  // E'' knows backslashes: the quote after \ does not end the string, the ';' is outside it
  CHECK(problem("E'\\'';") == "contains a statement separator ';' @5");
  // with standard_conforming_strings off, every string does
  CHECK(problem("'\\'';", true) == "contains a statement separator ';' @4");
  CHECK(problem("'\\'';") == "has an unterminated string literal @0");  // one string: \ then ''
}

TEST_CASE("string literals are collected with their offsets") {
  const auto scan = scan_pasted_text("opened < 'to''day' AND x = E'a\\'b' OR y = $t$now$t$");
  REQUIRE_FALSE(scan.problem);
  REQUIRE(scan.literals.size() == 3);
  CHECK(scan.literals[0].begin == 9);
  CHECK(scan.literals[0].value == "to'day");
  CHECK(scan.literals[1].value == "a'b");
  CHECK(scan.literals[2].value == "now");
}

TEST_CASE("the query tree reader lists nodes, fields and cast argument types") {
  const auto nodes = read_query_tree(
      "({QUERY :rtable ({RANGETBLENTRY :alias {ALIAS :aliasname a\\ \\{FUNCEXPR :colnames "
      "(\"x\\}\")} :rtekind 0 :relid 16384}) :targetList ({TARGETENTRY :expr {COERCEVIAIO :arg "
      "{VAR :varno 3 :varattno 4 :vartype 1082 :location 66} :resulttype 25 :location 57} "
      "{ROWCOMPAREEXPR :rctype 1 :opnos (o 96 521) :location 3} {FUNCEXPR :funcid 1598 "
      ":funcresulttype 701 :args <> :location 64}})})");
  std::vector<std::string> kinds;
  for (const auto& node : nodes) kinds.push_back(node.kind);
  CHECK(kinds == std::vector<std::string>{"QUERY", "RANGETBLENTRY", "ALIAS", "TARGETENTRY",
                                          "COERCEVIAIO", "VAR", "ROWCOMPAREEXPR", "FUNCEXPR"});
  CHECK(nodes[1].field("relid") == "16384");
  CHECK(nodes[2].field("aliasname") == "a\\ \\{FUNCEXPR");  // escaped text is no node
  CHECK(nodes[4].argument_type == "1082");
  CHECK(nodes[4].location() == 57);
  CHECK(nodes[6].opnos == std::vector<std::string>{"96", "521"});
  CHECK(nodes[7].field("funcid") == "1598");
  CHECK(nodes[7].location() == 64);
  CHECK(nodes[0].location() == -1);
}
