// PostgreSQL's FigureColname (parse_target.c): the name an unaliased expression gives a select-list
// column, and a function in FROM gives its range entry. Each rule has a strength, so a cast's
// type name yields to a stronger name found inside it (`CAST(coalesce(x) AS int)` is "coalesce").
#include <string_view>

#include "common/text.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {
namespace {

// PostgreSQL's strengths: 0 no name, 1 a fallback (a cast's type, "case"), 2 a real name.
int named(std::string& name, std::string_view value, int strength = 2) {
  name = std::string(value);
  return strength;
}

// The last String of a fields / indirection list, ignoring '*' and subscripts.
std::string last_string(const Json& list) {
  std::string found;
  for (const auto& item : list)
    if (item.contains("String")) found = string_at(node_at(item, "String"), "sval");
  return found;
}

// CURRENT_DATE, LOCALTIMESTAMP(2), CURRENT_USER, ...: "SVFOP_LOCALTIMESTAMP_N" -> "localtimestamp".
std::string sql_value_function(std::string_view op) {
  if (op.starts_with("SVFOP_")) op.remove_prefix(6);
  if (op.ends_with("_N")) op.remove_suffix(2);
  return text::ascii_lower(op);
}

}  // namespace

int ColumnNames::sub_link(const Json& body, std::string& name) {
  const auto type = body.value("subLinkType", "");
  if (type == "EXISTS_SUBLINK") return named(name, "exists");
  if (type == "ARRAY_SUBLINK") return named(name, "array");
  if (type != "EXPR_SUBLINK") return 0;
  // The subquery's first column name, as its own analysis would give it.
  const auto& targets = list_at(node_at(node_at(body, "subselect"), "SelectStmt"), "targetList");
  if (targets.empty()) return 0;
  const auto& target = node_at(targets[0], "ResTarget");
  if (target.contains("name")) return named(name, string_at(target, "name"));
  std::string inner;
  if (remembered(node_at(target, "val"), inner) == 0) inner = "?column?";
  return named(name, inner);
}

int ColumnNames::figure_tagged(std::string_view kind, const Json& body, std::string& name) {
  if (kind == "ColumnRef" || kind == "A_Indirection") {
    const auto field = last_string(list_at(body, kind == "ColumnRef" ? "fields" : "indirection"));
    if (!field.empty()) return named(name, field);
    return kind == "ColumnRef" ? 0 : figure(node_at(body, "arg"), name);
  }
  if (kind == "FuncCall") return named(name, last_string(list_at(body, "funcname")));
  if (kind == "A_Expr") return body.value("kind", "") == "AEXPR_NULLIF" ? named(name, "nullif") : 0;
  if (kind == "TypeCast") {
    const int strength = figure(node_at(body, "arg"), name);
    if (strength > 1) return strength;
    const auto type = last_string(list_at(node_at(body, "typeName"), "names"));
    return type.empty() ? strength : named(name, type, 1);
  }
  if (kind == "CollateClause") return figure(node_at(body, "arg"), name);
  if (kind == "GroupingFunc") return named(name, "grouping");
  if (kind == "SubLink") return sub_link(body, name);
  if (kind == "CaseExpr") {
    const int strength = figure(node_at(body, "defresult"), name);
    return strength > 1 ? strength : named(name, "case", 1);
  }
  if (kind == "A_ArrayExpr") return named(name, "array");
  if (kind == "RowExpr") return named(name, "row");
  if (kind == "CoalesceExpr") return named(name, "coalesce");
  if (kind == "MinMaxExpr")
    return named(name, body.value("op", "") == "IS_GREATEST" ? "greatest" : "least");
  if (kind == "SQLValueFunction") return named(name, sql_value_function(body.value("op", "")));
  if (kind == "XmlExpr") {
    std::string_view op = body.value("op", "");
    if (op == "IS_DOCUMENT" || !op.starts_with("IS_")) return 0;
    op.remove_prefix(3);
    return named(name, text::ascii_lower(op));
  }
  if (kind == "XmlSerialize") return named(name, "xmlserialize");
  return 0;
}

int ColumnNames::figure(const Json& node, std::string& name) {
  // The resolver names each scalar subquery as it resolves it, so naming rarely goes deep. Only
  // past the resolver's own depth limit (a statement refused with 54001 anyway) can it meet a
  // long chain of levels nobody named: bound it there, so the two recursions together stay
  // within a thread's stack (under AddressSanitizer's larger frames too).
  if (depth_ >= max_naming_depth) return 0;
  ++depth_;
  ++steps_;
  int strength = 0;
  for_tagged(node, [&](std::string_view kind, const Json& body) {
    strength = figure_tagged(kind, body, name);
  });
  --depth_;
  return strength;
}

int ColumnNames::remembered(const Json& node, std::string& name) {
  if (const auto it = figured_.find(&node); it != figured_.end()) {
    name = it->second.second;
    return it->second.first;
  }
  const int strength = figure(node, name);
  figured_.emplace(&node, std::pair{strength, name});
  return strength;
}

std::string ColumnNames::of(const Json& node) {
  std::string name;
  if (remembered(node, name) == 0) return "?column?";
  return name;
}

}  // namespace seedproxy::rewriter
