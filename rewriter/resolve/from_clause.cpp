// FROM clauses and WITH: range entries with their physical and seeded columns, joins (USING,
// NATURAL, aliases that hide their inputs), LATERAL visibility, and CTE columns.
#include <algorithm>

#include "common/identifiers.hpp"
#include "common/sqlstate.hpp"
#include "rewriter/catalog/table_shape.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {

void Resolver::apply_alias(const Json& range, Entry& entry) {
  const auto it = range.find("alias");
  if (it == range.end()) return;
  entry.refname = string_at(*it, "aliasname");
  entry.aliased = true;
  std::size_t i = 0;
  for (const auto& colname : list_at(*it, "colnames")) {
    const auto name = string_at(node_at(colname, "String"), "sval");
    if (i < entry.columns.size())
      entry.columns[i].name = name;
    else if (!entry.relation)
      entry.columns.push_back({name, nullptr, true, {}, 0});
    ++i;
  }
  if (i > 0 && !entry.columns_known && !entry.relation && i >= entry.columns.size())
    entry.columns_known = true;
}

namespace {

// True when unqualified `name` means one of the session's temporary relations: pg_temp is searched
// first unless search_path names it, then in its place (namespace.c, recomputeNamespacePath).
bool temp_shadows(const RewriteRequest& request, std::string_view name) {
  const auto& temps = request.temp_tables;
  if (std::find(temps.begin(), temps.end(), name) == temps.end()) return false;
  const auto& path = request.search_path;
  const auto temp_at = std::find(path.begin(), path.end(), "pg_temp");
  if (temp_at == path.end()) return true;
  if (request.catalog.find("pg_catalog", name)) return false;
  return std::none_of(path.begin(), temp_at, [&](const std::string& schema) {
    return request.catalog.find(schema, name) != nullptr;
  });
}

}  // namespace

Entry Resolver::relation_entry(const Json& range_var, const Scope& scope) {
  Entry entry;
  entry.schema = string_at(range_var, "schemaname");
  entry.relname = string_at(range_var, "relname");
  entry.refname = entry.relname;
  const Cte* cte = entry.schema.empty() ? scope.find_cte(entry.relname) : nullptr;
  if (cte) {
    for (const auto& name : cte->columns) entry.columns.push_back({name, nullptr, true, {}, 0});
    entry.columns_known = cte->columns_known;
  } else if (string_at(range_var, "catalogname").empty()) {
    const Relation* relation =
        entry.schema.empty() ? (temp_shadows(request_, entry.relname)
                                    ? nullptr
                                    : request_.catalog.resolve(request_.search_path, entry.relname))
                             : request_.catalog.find(entry.schema, entry.relname);
    if (relation) {
      entry.relation = true;
      entry.schema = relation->schema;
      entry.columns_known = true;
      const auto seeds = request_.seeds.live_for(relation->schema, relation->name);
      auto shape = table_shape(*relation, seeds);
      entry.physical_first = shape.physical_first;
      entry.columns.reserve(shape.columns.size());
      for (auto& column : shape.columns)
        entry.columns.push_back(
            {column.name, column.seed, column.physical, column.name, column.attnum});
      for (auto& column : shape.hidden)
        entry.hidden.push_back({column.name, nullptr, true, column.name, column.attnum});
    }
  }
  apply_alias(range_var, entry);
  return entry;
}

namespace {

// Tokens of "[AS] alias ( name, ... )" after a relation name ending at byte `end`.
struct AliasList {
  std::size_t alias = 0;
  std::vector<std::size_t> names;  // first token of each name
  std::size_t close = 0;           // the ')'
};

std::optional<AliasList> alias_list(std::string_view sql, const std::vector<Token>& tokens, int end,
                                    bool with_names) {
  AliasList list;
  std::size_t i = static_cast<std::size_t>(
      std::lower_bound(tokens.begin(), tokens.end(), end,
                       [](const Token& t, int at) { return t.start < at; }) -
      tokens.begin());
  if (i < tokens.size() && token_is(sql, tokens[i], "as")) ++i;
  if (i >= tokens.size()) return std::nullopt;
  list.alias = i++;
  if (!with_names) return list;
  if (i >= tokens.size() || tokens[i].single != '(') return std::nullopt;
  for (std::size_t at = i + 1; at < tokens.size();) {
    list.names.push_back(at++);
    if (at + 1 < tokens.size() && tokens[at].kind == TokenKind::uescape) at += 2;
    if (at < tokens.size() && tokens[at].single == ',') {
      ++at;
      continue;
    }
    if (at >= tokens.size() || tokens[at].single != ')') return std::nullopt;
    list.close = at;
    return list;
  }
  return std::nullopt;
}

}  // namespace

// An alias column list renames the columns in the order the table shows them, seeds included
// ("account AS a(i, o, b, c, d, r)"); upstream it renames the relation's physical columns in
// attnum order. When those orders agree the names of columns upstream lacks are cut from the
// end of the list; otherwise the list is written again, with each physical column's new name.
std::optional<Edit> Resolver::alias_columns_edit(const Json& range_var, const Entry& entry) const {
  const auto& colnames = list_at(node_at(range_var, "alias"), "colnames");
  if (!entry.relation || colnames.empty()) return std::nullopt;
  const auto extent = relation_extent_of(range_var);
  if (!extent) return std::nullopt;
  const auto list = alias_list(request_.sql, tokens_, extent->end, true);
  if (!list || list->names.size() != colnames.size()) return std::nullopt;
  // More names than columns: PostgreSQL's error (with_alias_count_checked refuses it when a
  // column is virtual; otherwise upstream counts what the client sees).
  if (colnames.size() > entry.columns.size()) return std::nullopt;
  if (entry.physical_first) {
    std::size_t physical = 0;
    while (physical < entry.columns.size() && entry.columns[physical].physical) ++physical;
    if (colnames.size() <= physical || physical == 0) return std::nullopt;
    const auto& comma = tokens_[list->names[physical] - 1];
    return Edit{comma.start, tokens_[list->close - 1].end, ""};
  }
  // Upstream's columns in attnum order: each physical one with its new name, and whether the
  // client's list renamed it; columns clients no longer see keep their own name.
  struct Own {
    int attnum;
    const std::string* name;
    bool renamed;
  };
  std::vector<Own> own;
  for (std::size_t i = 0; i < entry.columns.size(); ++i)
    if (entry.columns[i].physical)
      own.push_back({entry.columns[i].attnum, &entry.columns[i].name, i < colnames.size()});
  for (const auto& column : entry.hidden) own.push_back({column.attnum, &column.name, false});
  std::sort(own.begin(), own.end(), [](const Own& a, const Own& b) { return a.attnum < b.attnum; });
  std::size_t needed = 0;  // up to the last physical column the list renames
  for (std::size_t k = 0; k < own.size(); ++k)
    if (own[k].renamed) needed = k + 1;
  std::string names;
  for (std::size_t k = 0; k < needed; ++k)
    names += (k ? ", " : "(") + pg::quote_identifier(*own[k].name);
  if (needed > 0) names += ")";
  return Edit{tokens_[list->names.front() - 1].start, tokens_[list->close].end, names};
}

// An alias list longer than the columns the client sees is PostgreSQL's error, whose count must
// be the client's: upstream, with the seeds still virtual, would count fewer columns.
bool Resolver::alias_count_fits(const Json& range_var, const Entry& entry) {
  const auto& colnames = list_at(node_at(range_var, "alias"), "colnames");
  if (!entry.relation || colnames.size() <= entry.columns.size()) return true;
  if (std::all_of(entry.columns.begin(), entry.columns.end(),
                  [](const Column& column) { return column.physical; }))
    return true;
  fail(sqlstate::invalid_column_reference,
       "table \"" + entry.refname + "\" has " + std::to_string(entry.columns.size()) +
           " columns available but " + std::to_string(colnames.size()) + " columns specified",
       {});
  return false;
}

void Resolver::trim_alias_columns(const Json& range_var, const Entry& entry) {
  if (!alias_count_fits(range_var, entry)) return;
  if (auto edit = alias_columns_edit(range_var, entry)) out_.edits.push_back(std::move(*edit));
}

std::optional<RelationExtent> Resolver::relation_extent_of(const Json& range_var) const {
  const std::size_t names = string_at(range_var, "schemaname").empty() ? 1 : 2;
  return relation_extent(request_.sql, tokens_, range_var.value("location", -1), names,
                         !range_var.value("inh", false));
}

// The text of "[ONLY] name [*] [[AS] alias [(names)]]".
std::optional<std::pair<int, int>> Resolver::relation_span(const Json& range_var) const {
  const auto extent = relation_extent_of(range_var);
  if (!extent) return std::nullopt;
  if (!range_var.contains("alias")) return std::pair{extent->begin, extent->end};
  const bool with_names = node_at(range_var, "alias").contains("colnames");
  const auto list = alias_list(request_.sql, tokens_, extent->end, with_names);
  if (!list) return std::nullopt;
  return std::pair{extent->begin, tokens_[with_names ? list->close : list->alias].end};
}

// Reads the relation through "(SELECT *, <attributes> FROM relation alias) alias", so whole-row
// references, join aliases and USING see the attributes as the relation's own columns.
void Resolver::wrap(const Json& range_var, Entry& entry) {
  if (!alias_count_fits(range_var, entry)) return;
  const auto span = relation_span(range_var);
  if (!span) return;
  Scope alone;
  alone.visible.push_back(alone.add_leaf(entry));
  const auto columns = star_text(alone, alone.visible, true);
  if (!columns) return;
  std::string written(request_.sql.substr(static_cast<std::size_t>(span->first),
                                          static_cast<std::size_t>(span->second - span->first)));
  if (const auto edit = alias_columns_edit(range_var, entry))
    written.replace(static_cast<std::size_t>(edit->begin - span->first),
                    static_cast<std::size_t>(edit->end - edit->begin), edit->text);
  out_.edits.push_back(
      {span->first, span->second,
       "(SELECT " + *columns + " FROM " + written + ") " + pg::quote_identifier(entry.refname)});
  for (auto& column : entry.columns) {
    column.seed = nullptr;
    column.physical = true;
  }
  entry.physical_first = true;  // the derived table's '*' lists them in the shape's order
  entry.wrap_location = -1;
  entry.wrapped = true;
}

void Resolver::request_wrap(const Scope& scope, int entry) {
  const Entry& e = scope.entries[static_cast<std::size_t>(entry)];
  if (e.wrap_location >= 0) wrap_requests_.insert(e.wrap_location);
}

void Resolver::request_wraps_under(const Scope& scope, int item) {
  for (const auto& column : scope.columns_of(item))
    if (column.entry >= 0 &&
        scope.entries[static_cast<std::size_t>(column.entry)].columns[column.index].rewritten())
      request_wrap(scope, column.entry);
  const Item& node = scope.items[static_cast<std::size_t>(item)];
  for (const int side : {node.left, node.right})
    if (side >= 0) request_wraps_under(scope, side);
}

int Resolver::relation_item(const Json& range_var, Scope& scope) {
  Entry entry = relation_entry(range_var, scope);
  if (entry.relation) entry.wrap_location = range_var.value("location", -1);
  if (wrapped_.count(entry.wrap_location))
    wrap(range_var, entry);
  else
    trim_alias_columns(range_var, entry);
  return scope.add_leaf(std::move(entry));
}

int Resolver::subselect_item(const Json& body, Scope& scope) {
  Entry entry;
  const auto& subquery = node_at(node_at(body, "subquery"), "SelectStmt");
  std::vector<std::string> names;
  if (body.value("lateral", false)) {
    names = select(subquery, &scope, &entry.columns_known);
  } else {
    // Without LATERAL a subquery sees the outer levels and the CTEs, not its siblings.
    Scope barrier;
    barrier.parent = scope.parent;
    barrier.ctes = scope.ctes;
    names = select(subquery, &barrier, &entry.columns_known);
  }
  for (auto& name : names) entry.columns.push_back({std::move(name), nullptr, true, {}, 0});
  apply_alias(body, entry);
  return scope.add_leaf(std::move(entry));
}

int Resolver::join_item(const Json& body, Scope& scope) {
  const auto saved = scope.visible;
  const int left = from_item(node_at(body, "larg"), scope);
  scope.visible.push_back(left);  // a LATERAL right side sees the left one
  const int right = from_item(node_at(body, "rarg"), scope);
  scope.visible = saved;
  Item join;
  join.left = left;
  join.right = right;
  join.join_type = body.value("jointype", "JOIN_INNER");
  join.alias = string_at(node_at(body, "alias"), "aliasname");
  for (const auto& name : list_at(node_at(body, "alias"), "colnames"))
    join.renamed.push_back(string_at(node_at(name, "String"), "sval"));
  join.using_alias = string_at(node_at(body, "join_using_alias"), "aliasname");
  for (const auto& name : list_at(body, "usingClause"))
    join.merged.push_back(string_at(node_at(name, "String"), "sval"));
  if (body.value("isNatural", false)) {
    const auto right_columns = scope.columns_of(right);
    for (const auto& column : scope.columns_of(left))
      if (std::any_of(right_columns.begin(), right_columns.end(),
                      [&](const ItemColumn& c) { return c.name == column.name; }) &&
          std::find(join.merged.begin(), join.merged.end(), column.name) == join.merged.end())
        join.merged.push_back(column.name);
  }
  // Merging on a seeded attribute needs it as a real column of its side.
  for (const int side : {left, right})
    for (const auto& column : scope.columns_of(side))
      if (column.entry >= 0 &&
          std::find(join.merged.begin(), join.merged.end(), column.name) != join.merged.end() &&
          scope.entries[static_cast<std::size_t>(column.entry)].columns[column.index].rewritten())
        request_wrap(scope, column.entry);
  // ON sees exactly the two sides of its join.
  scope.visible = {left, right};
  if (const auto it = body.find("quals"); it != body.end()) expression(*it, scope);
  scope.visible = saved;
  const int index = scope.add_join(std::move(join));
  // An alias list that reaches a seeded column renames it, so the column must exist in the
  // join: the tables under it are read through derived tables that carry their seeds.
  const auto& renamed = scope.items[static_cast<std::size_t>(index)].renamed;
  const auto columns = scope.columns_of(index);
  for (std::size_t i = 0; i < renamed.size() && i < columns.size(); ++i)
    if (columns[i].entry >= 0 && scope.entries[static_cast<std::size_t>(columns[i].entry)]
                                     .columns[columns[i].index]
                                     .rewritten()) {
      request_wraps_under(scope, index);
      break;
    }
  return index;
}

int Resolver::function_item(const Json& body, Scope& scope) {
  Entry entry;
  // Functions in FROM are implicitly LATERAL.
  for (const auto& function : list_at(body, "functions")) expression(function, scope);
  // Without an alias the entry is named after its first function as FigureColname names it:
  // coalesce(…), greatest(…), CURRENT_DATE and CAST(…) are not FuncCalls.
  const auto& functions = list_at(body, "functions");
  if (!functions.empty() && !list_items(functions[0]).empty())
    entry.refname = column_names_.of(list_items(functions[0])[0]);
  apply_alias(body, entry);
  return scope.add_leaf(std::move(entry));
}

// Table samples, XMLTABLE and friends: visible by alias, columns of a relation if any.
int Resolver::other_item(std::string_view kind, const Json& body, Scope& scope) {
  Entry entry;
  if (kind == "RangeTableFunc") entry.refname = "xmltable";  // PostgreSQL's name without alias
  for (const auto& [key, child] : body.items()) {
    if (key == "relation") {
      for_tagged(child, [&](std::string_view inner, const Json& range_var) {
        if (inner == "RangeVar") {
          entry = relation_entry(range_var, scope);
          trim_alias_columns(range_var, entry);
        }
      });
    } else if (key != "alias") {
      expression(child, scope);
    }
  }
  apply_alias(body, entry);
  return scope.add_leaf(std::move(entry));
}

int Resolver::from_item(const Json& node, Scope& scope) {
  int result = -1;
  const Depth depth(*this);
  if (depth.too_deep()) return result;
  for_tagged(node, [&](std::string_view kind, const Json& body) {
    if (failed()) return;
    if (kind == "RangeVar")
      result = relation_item(body, scope);
    else if (kind == "RangeSubselect")
      result = subselect_item(body, scope);
    else if (kind == "JoinExpr")
      result = join_item(body, scope);
    else if (kind == "RangeFunction")
      result = function_item(body, scope);
    else
      result = other_item(kind, body, scope);
  });
  return result;
}

void Resolver::from_clause(const Json& list, Scope& scope) {
  for (const auto& node : list) {
    const int item = from_item(node, scope);
    if (item >= 0) scope.visible.push_back(item);
  }
}

int Resolver::target_relation(const Json& body, Scope& scope) {
  const auto& relation = node_at(body, "relation");
  const auto& range_var =
      node_at(relation, "RangeVar").is_null() ? relation : node_at(relation, "RangeVar");
  Scope no_ctes;  // a data-modifying statement's target is always a table, never a CTE
  Entry entry = relation_entry(range_var, no_ctes);
  return scope.add_leaf(std::move(entry));
}

void Resolver::with_clause(const Json& body, Scope& scope) {
  const auto it = body.find("withClause");
  if (it == body.end()) return;
  const bool recursive = it->value("recursive", false);
  for (const auto& node : list_at(*it, "ctes")) {
    if (failed()) return;
    const auto& cte = node_at(node, "CommonTableExpr");
    Cte defined;
    defined.name = string_at(cte, "ctename");
    const auto& query = node_at(cte, "ctequery");
    const auto& select_body = node_at(query, "SelectStmt");
    const auto& aliases = list_at(cte, "aliascolnames");
    auto rename = [&](std::vector<std::string>& columns) {
      for (std::size_t i = 0; i < aliases.size() && i < columns.size(); ++i)
        columns[i] = string_at(node_at(aliases[i], "String"), "sval");
    };
    // A recursive CTE sees itself; its columns come from the non-recursive term.
    if (recursive && !select_body.is_null() &&
        select_body.value("op", "SETOP_NONE") != "SETOP_NONE") {
      Resolver probe(request_, tokens_);
      bool known = false;
      defined.columns = probe.select(node_at(select_body, "larg"), &scope, &known);
      rename(defined.columns);
      defined.columns_known = known;
      scope.ctes.push_back(defined);
    }
    bool known = false;
    std::vector<std::string> columns;
    if (!select_body.is_null()) {
      columns = select(select_body, &scope, &known);
    } else {
      statement(query, &scope);  // data-modifying CTE: columns from RETURNING
      columns = returning_names_;
      known = returning_known_;
    }
    rename(columns);
    defined.columns = std::move(columns);
    defined.columns_known = known;
    auto existing = std::find_if(scope.ctes.begin(), scope.ctes.end(),
                                 [&](const Cte& c) { return c.name == defined.name; });
    if (existing != scope.ctes.end())
      *existing = std::move(defined);
    else
      scope.ctes.push_back(std::move(defined));
  }
}

}  // namespace seedproxy::rewriter
