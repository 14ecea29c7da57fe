// Compiling seeds: expression templates bound per alias, lookups, and the cheap pre-filter.
#include "rewriter/seed_set.hpp"

#include <algorithm>

#include "rewriter/parse_tree.hpp"
#include "rewriter/pg_parser.hpp"
#include "rewriter/sql_text.hpp"

namespace seedproxy::rewriter {
namespace {

constexpr std::string_view expression_prefix = "SELECT ";

struct Cut {
  int begin;
  int end;
  std::string column;
};

bool has_column(const Relation& relation, const std::string& column) {
  return std::find(relation.columns.begin(), relation.columns.end(), column) !=
         relation.columns.end();
}

// Finds the references to the entity's columns, minding subqueries that bring their own
// relations into scope (their columns and aliases shadow the entity's).
class ReferenceFinder {
 public:
  ReferenceFinder(const Relation& entity, const Catalog& catalog, const std::vector<Token>& tokens)
      : entity_(entity), catalog_(catalog), tokens_(tokens) {}

  void walk(const Json& node) {
    if (node.is_array()) {
      for (const auto& child : node) walk(child);
      return;
    }
    if (!node.is_object()) return;
    if (const auto it = node.find("ColumnRef"); it != node.end() && node.size() == 1) {
      visit_column_ref(*it);
      return;
    }
    if (const auto it = node.find("SelectStmt"); it != node.end() && node.size() == 1) {
      cross_table = true;
      std::vector<Local> frame;
      collect_locals(list_at(*it, "fromClause"), frame);
      locals_.push_back(std::move(frame));
      for (const auto& [key, child] : it->items())
        if (key != "fromClause") walk(child);
      walk(list_at(*it, "fromClause"));
      locals_.pop_back();
      return;
    }
    for (const auto& [key, child] : node.items()) walk(child);
  }

  std::vector<Cut> cuts;
  bool cross_table = false;
  std::string error;

 private:
  struct Local {
    std::string refname;
    const Relation* relation;
  };

  void collect_locals(const Json& from, std::vector<Local>& frame) {
    for (const auto& item : from) {
      for_tagged(item, [&](const std::string& kind, const Json& body) {
        if (kind == "RangeVar") {
          const auto schema = string_at(body, "schemaname");
          const auto name = string_at(body, "relname");
          const auto alias = body.contains("alias") ? string_at(body["alias"], "aliasname") : "";
          const Relation* relation =
              schema.empty() ? catalog_.resolve(std::vector<std::string>{"public"}, name)
                             : catalog_.find(schema, name);
          frame.push_back({alias.empty() ? name : alias, relation});
        } else if (kind == "JoinExpr") {
          collect_locals(Json::array({node_at(body, "larg"), node_at(body, "rarg")}), frame);
        } else if (body.contains("alias")) {
          frame.push_back({string_at(body["alias"], "aliasname"), nullptr});
        }
      });
    }
  }

  bool local_column(const std::string& column) const {
    for (const auto& frame : locals_)
      for (const auto& local : frame)
        if (local.relation && has_column(*local.relation, column)) return true;
    return false;
  }

  bool local_refname(const std::string& name) const {
    for (const auto& frame : locals_)
      for (const auto& local : frame)
        if (local.refname == name) return true;
    return false;
  }

  void visit_column_ref(const Json& body) {
    const auto ref = read_column_ref(body);
    if (ref.star || ref.names.empty()) return;
    const auto& names = ref.names;
    const std::string& column = names.back();
    bool entity_ref = false;
    if (names.size() == 1) {
      entity_ref = !local_column(column);
    } else if (names.size() == 2) {
      entity_ref = names[0] == entity_.name && !local_refname(names[0]);
    } else if (names.size() == 3) {
      entity_ref = names[0] == entity_.schema && names[1] == entity_.name;
    }
    if (!entity_ref) return;
    if (!has_column(entity_, column)) {
      error =
          "column \"" + column + "\" of " + entity_.schema + "." + entity_.name + " does not exist";
      return;
    }
    const auto end =
        end_after_tokens(tokens_, ref.location, static_cast<int>(names.size() * 2 - 1));
    if (!end) {
      error = "could not locate a column reference in the expression";
      return;
    }
    cuts.push_back({ref.location, *end, column});
  }

  const Relation& entity_;
  const Catalog& catalog_;
  const std::vector<Token>& tokens_;
  std::vector<std::vector<Local>> locals_;
};

}  // namespace

std::string_view to_string(Phase phase) noexcept {
  switch (phase) {
    case Phase::declared:
      return "declared";
    case Phase::virtual_:
      return "virtual";
    case Phase::materializing:
      return "materializing";
    case Phase::materialized:
      return "materialized";
    case Phase::rolled_back:
      return "rolled_back";
  }
  return "unknown";
}

std::string ExpressionTemplate::compile(std::string_view expression, const Relation& entity,
                                        const Catalog& catalog) {
  const std::string text = std::string(expression_prefix) + std::string(expression);
  const auto parsed = parse_sql(text);
  if (parsed.failure) {
    const int at = parsed.failure->position - static_cast<int>(expression_prefix.size());
    return "expression does not parse: " + parsed.failure->message +
           (at > 0 ? " at character " + std::to_string(at) : "");
  }
  const auto& statements = list_at(parsed.tree, "stmts");
  const Json* select = nullptr;
  if (statements.size() == 1) {
    const auto& stmt = node_at(statements[0], "stmt");
    if (const auto it = stmt.find("SelectStmt"); it != stmt.end()) select = &*it;
  }
  // Exactly "SELECT <one unnamed target>": no FROM, WHERE, second target or trailing clause.
  if (!select || list_at(*select, "targetList").size() != 1 || select->size() != 3 ||
      node_at(list_at(*select, "targetList")[0], "ResTarget").contains("name"))
    return "expression must be exactly one scalar expression";
  ReferenceFinder finder(entity, catalog, parsed.tokens);
  finder.walk(list_at(*select, "targetList"));
  if (!finder.error.empty()) return finder.error;

  std::sort(finder.cuts.begin(), finder.cuts.end(),
            [](const Cut& a, const Cut& b) { return a.begin < b.begin; });
  pieces_.clear();
  int at = static_cast<int>(expression_prefix.size());
  for (const auto& cut : finder.cuts) {
    pieces_.push_back(
        {text.substr(static_cast<std::size_t>(at), static_cast<std::size_t>(cut.begin - at)),
         false});
    pieces_.push_back({cut.column, true});
    at = cut.end;
  }
  pieces_.push_back({text.substr(static_cast<std::size_t>(at)), false});
  cross_table_ = finder.cross_table;
  return {};
}

std::string ExpressionTemplate::bind(std::string_view alias) const {
  const std::string qualifier = quote_identifier(alias) + ".";
  std::string out;
  for (const auto& piece : pieces_) {
    if (piece.column) {
      out += qualifier;
      out += quote_identifier(piece.text);
    } else {
      out += piece.text;
    }
  }
  return out;
}

SeedSet SeedSet::compile(const std::vector<SeedDefinition>& definitions, const Catalog& catalog,
                         std::uint64_t version, std::vector<std::string>& errors) {
  SeedSet set;
  set.version_ = version;
  for (const auto& definition : definitions) {
    const std::string name =
        definition.schema + "." + definition.table + "." + definition.attribute;
    const Relation* entity = catalog.find(definition.schema, definition.table);
    if (!entity) {
      errors.push_back(name + ": relation " + definition.schema + "." + definition.table +
                       " does not exist");
      continue;
    }
    VirtualAttribute attribute{definition.schema, definition.table, definition.attribute,
                               definition.type,   definition.phase, {}};
    if (attribute.resolved_by_proxy() && has_column(*entity, definition.attribute)) {
      errors.push_back(name + ": " + definition.table + " already has a physical column \"" +
                       definition.attribute + "\"");
      continue;
    }
    if (auto error = attribute.expression.compile(definition.expression, *entity, catalog);
        !error.empty()) {
      errors.push_back(name + ": " + error);
      continue;
    }
    if (attribute.resolved_by_proxy()) {
      for (const auto* word : {&definition.attribute, &definition.table}) {
        std::string lower;
        for (char c : *word) lower += ascii_lower(c);
        if (std::find(set.filter_words_.begin(), set.filter_words_.end(), lower) ==
            set.filter_words_.end())
          set.filter_words_.push_back(std::move(lower));
      }
    }
    set.attributes_.push_back(std::move(attribute));
  }
  return set;
}

const VirtualAttribute* SeedSet::find(std::string_view schema, std::string_view table,
                                      std::string_view attribute) const {
  for (const auto& a : attributes_)
    if (a.schema == schema && a.table == table && a.name == attribute) return &a;
  return nullptr;
}

std::vector<const VirtualAttribute*> SeedSet::resolved_for(std::string_view schema,
                                                           std::string_view table) const {
  std::vector<const VirtualAttribute*> out;
  for (const auto& a : attributes_)
    if (a.schema == schema && a.table == table && a.resolved_by_proxy()) out.push_back(&a);
  return out;
}

bool SeedSet::might_apply(std::string_view sql) const noexcept {
  for (const auto& word : filter_words_)
    if (contains_ignoring_case(sql, word)) return true;
  return false;
}

}  // namespace seedproxy::rewriter
