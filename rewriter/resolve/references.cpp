// Expressions and names: column references resolved level by level as PostgreSQL does, '*'
// expansion, output names of select-list items, and the text a seeded column becomes.
#include <algorithm>
#include <functional>

#include "common/identifiers.hpp"
#include "common/sqlstate.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {
namespace {

// Reserved words that end a select-list or RETURNING item at parenthesis depth zero.
constexpr std::string_view item_terminators[] = {
    "from",   "into",  "where", "group", "having",    "window", "order",     "limit",
    "offset", "fetch", "for",   "union", "intersect", "except", "returning", "on"};

// Whether '*' over the item must show something its relations' own '*' would not: a seed the
// proxy resolves, or columns in another order than upstream's.
bool any_reshaped(const Scope& scope, int item) {
  for (const auto& column : scope.columns_of(item)) {
    if (column.entry < 0) continue;
    const Entry& e = scope.entries[static_cast<std::size_t>(column.entry)];
    if (!e.physical_first || e.columns[column.index].rewritten()) return true;
  }
  return false;
}

// Whether the entry's '*' is its relation's own '*' followed by the seeds it lacks.
bool only_appended(const Entry& e) {
  return e.physical_first && std::none_of(e.columns.begin(), e.columns.end(),
                                          [](const Column& c) { return c.spelled_out(); });
}

// The node that gives an unaliased select-list item its name, following FigureColname through
// casts, COLLATE and subscripts; null when the name does not come from a column reference.
const Json* name_leaf(const Json& value) {
  const Json* leaf = nullptr;
  for_tagged(value, [&](std::string_view kind, const Json& body) {
    if (kind == "ColumnRef") {
      const auto& fields = list_at(body, "fields");
      if (fields.empty() || !fields.back().contains("A_Star")) leaf = &body;
    } else if (kind == "TypeCast" || kind == "CollateClause") {
      leaf = name_leaf(node_at(body, "arg"));
    } else if (kind == "A_Indirection") {
      const auto& steps = list_at(body, "indirection");
      if (steps.empty() || !steps.back().contains("String"))
        leaf = name_leaf(node_at(body, "arg"));
      else if (steps.size() == 1)
        leaf = &body;  // (alias).attribute
    }
  });
  return leaf;
}

std::string leaf_name(const Json& leaf) {
  if (leaf.contains("indirection"))
    return string_at(node_at(list_at(leaf, "indirection").back(), "String"), "sval");
  const auto view = read_column_ref(leaf);
  return view.names.empty() ? std::string() : view.names.back();
}

}  // namespace

void Resolver::expression(const Json& node, Scope& scope) {
  const Depth depth(*this);
  if (failed() || depth.too_deep()) return;
  if (node.is_array()) {
    for (const auto& child : node) expression(child, scope);
    return;
  }
  if (!node.is_object()) return;
  if (node.size() == 1) {
    const auto it = node.begin();
    const auto& body = it.value();
    if (it.key() == "ColumnRef") {
      const auto view = read_column_ref(body);
      const bool spliced = column_ref(view, scope);
      if (&body == name_leaf_) name_leaf_spliced_ = spliced;
      return;
    }
    if (it.key() == "SelectStmt") {
      select(body, &scope);
      return;
    }
    if (it.key() == "SubLink") {
      if (const auto test = body.find("testexpr"); test != body.end()) {
        const UseRows operand(*this, RowUse::physical);
        expression(*test, scope);
      }
      select(node_at(node_at(body, "subselect"), "SelectStmt"), &scope);
      return;
    }
    if (it.key() == "A_Indirection" && field_of_row(body, scope)) {
      if (&body == name_leaf_) name_leaf_spliced_ = true;
      return;
    }
  }
  // Step through a node's tag and its body in one frame: long operator chains nest deeply.
  const bool tagged = node.size() == 1 && node.begin().value().is_object();
  const Json& body = tagged ? node.begin().value() : node;
  const RowUse use = row_use_;
  for (const auto& [key, child] : body.items())
    if (child.is_structured()) {
      row_use_ = tagged ? child_row_use(node.begin().key(), key, body, use) : use;
      expression(child, scope);
    }
  row_use_ = use;
}

bool Resolver::column_ref(const ColumnRefView& view, Scope& scope) {
  const auto& names = view.names;
  if (view.star || names.size() == 1) {
    // A whole-row reference ("a", "a.*" in an expression) must carry the attributes too.
    bool column = false;
    for (Scope* level = &scope; level && !column && !view.star; level = level->parent)
      column = !level->visible_named(names[0]).empty();
    for (Scope* level = &scope; level && !column && names.size() == 1; level = level->parent)
      if (const auto named = level->find_named(names)) {
        if (named->entry >= 0) return whole_row_reference(view, *level, named->entry, scope);
        // A join's whole row is a record either way; shown, it carries the seeds.
        if (!named->using_alias && row_use_ == RowUse::shown)
          request_wraps_under(*level, named->join);
        break;
      }
    if (view.star) return false;
  }
  if (names.empty() || names.size() > 3) return false;
  const std::string& column = names.back();
  const std::vector<std::string> qualifier(names.begin(), names.end() - 1);
  for (Scope* level = &scope; level; level = level->parent) {
    int entry = -1;
    std::size_t index = 0;
    if (!qualifier.empty()) {
      const auto named = level->find_named(qualifier);
      if (!named) continue;
      if (named->using_alias) return false;
      std::vector<ItemColumn> matches;
      if (named->entry >= 0) {
        const auto& e = level->entries[static_cast<std::size_t>(named->entry)];
        for (std::size_t i = 0; i < e.columns.size(); ++i)
          if (e.columns[i].name == column) matches.push_back({column, named->entry, i, -1});
      } else {
        level->columns_named(named->join, column, matches);
      }
      if (matches.size() != 1 || matches[0].entry < 0) return false;
      entry = matches[0].entry;
      index = matches[0].index;
    } else {
      const std::vector<ItemColumn> matches = level->visible_named(column);
      if (matches.empty()) continue;
      if (matches.size() > 1) {
        // A physical column of the same name elsewhere in scope: PostgreSQL's own error.
        for (const auto& m : matches)
          if (m.entry >= 0 &&
              level->entries[static_cast<std::size_t>(m.entry)].columns[m.index].rewritten()) {
            fail(sqlstate::ambiguous_column, "column reference \"" + column + "\" is ambiguous", {},
                 position_of(view.location));
            break;
          }
        return false;
      }
      if (matches[0].entry < 0) return false;  // a merged USING column
      entry = matches[0].entry;
      index = matches[0].index;
    }
    const auto& target = level->entries[static_cast<std::size_t>(entry)].columns[index];
    if (!target.rewritten()) return false;
    const auto end = reference_end(tokens_, view.location, names.size());
    const auto text = bind(*level, entry, index, scope, false);
    if (!text) request_wrap(*level, entry);
    if (!end || !text) return false;
    out_.edits.push_back({view.location, *end, operand(*text, *end)});
    return true;
  }
  return false;
}

// A subscript after the reference ("names[1]") must apply to the whole value written in its
// place: after a cast it would be read as array bounds of the type ("::text[][1]", the whole
// array), after COALESCE(...) it is a syntax error.
std::string Resolver::operand(std::string text, int end) const {
  const auto next = std::lower_bound(tokens_.begin(), tokens_.end(), end,
                                     [](const Token& t, int at) { return t.start < at; });
  if (next == tokens_.end() || next->single != '[') return text;
  return "(" + text + ")";
}

// "(alias).attribute": field selection from a whole-row reference.
bool Resolver::field_of_row(const Json& indirection, Scope& scope) {
  const auto& steps = list_at(indirection, "indirection");
  const auto& ref = node_at(node_at(indirection, "arg"), "ColumnRef");
  if (steps.size() != 1 || !steps[0].contains("String") || ref.is_null()) return false;
  const auto view = read_column_ref(ref);
  if (view.star || view.names.size() != 1) return false;
  const auto field = string_at(node_at(steps[0], "String"), "sval");
  for (Scope* level = &scope; level; level = level->parent) {
    if (!level->visible_named(view.names[0]).empty()) return false;  // a composite column
    const auto named = level->find_named(view.names);
    if (!named) continue;
    if (named->entry < 0) return false;
    const auto& e = level->entries[static_cast<std::size_t>(named->entry)];
    for (std::size_t i = 0; i < e.columns.size(); ++i) {
      if (e.columns[i].name != field || !e.columns[i].rewritten()) continue;
      // Tokens: '(' × n, name, ')' × n, '.', field.
      const auto at = token_index(tokens_, view.location);
      if (!at) return false;
      std::size_t close = *at + 1, parens = 0;
      while (close < tokens_.size() && tokens_[close].single == ')') ++close, ++parens;
      if (parens == 0 || parens > *at || close + 1 >= tokens_.size() ||
          tokens_[close].single != '.')
        return false;
      for (std::size_t k = 1; k <= parens; ++k)
        if (tokens_[*at - k].single != '(') return false;
      const auto text = bind(*level, named->entry, i, scope, false);
      if (!text) request_wrap(*level, named->entry);
      if (!text) return false;
      out_.edits.push_back({tokens_[*at - parens].start, tokens_[close + 1].end,
                            operand(*text, tokens_[close + 1].end)});
      return true;
    }
    return false;
  }
  return false;
}

// The name through which a column of entry `entry` (by its catalog name) is read where the seed
// is bound: the entry's own name for it (an alias list may rename it) or, inside a join with an
// alias, the join's (which must show it once). nullopt when it cannot be reached.
std::optional<std::string> Resolver::visible_name(const Scope& level, int entry, int hider,
                                                  const std::vector<ItemColumn>& join_columns,
                                                  const std::string& original) const {
  const Entry& e = level.entries[static_cast<std::size_t>(entry)];
  std::size_t index = 0;
  while (index < e.columns.size() &&
         !(e.columns[index].physical && e.columns[index].original == original))
    ++index;
  if (index == e.columns.size()) return original;  // not a column of this entry: leave it
  if (hider < 0) return e.columns[index].name;
  const auto ours =
      std::find_if(join_columns.begin(), join_columns.end(),
                   [&](const ItemColumn& c) { return c.entry == entry && c.index == index; });
  if (ours == join_columns.end()) return std::nullopt;  // merged by USING: not this side's value
  const auto same = std::count_if(join_columns.begin(), join_columns.end(),
                                  [&](const ItemColumn& c) { return c.name == ours->name; });
  if (same != 1) return std::nullopt;
  return ours->name;
}

std::optional<std::string> Resolver::bind(const Scope& level, int entry, std::size_t index,
                                          const Scope& at, bool with_name) {
  const Entry& e = level.entries[static_cast<std::size_t>(entry)];
  const Column& column = e.columns[index];
  const VirtualAttribute& attribute = *column.seed;
  // Inside a join with an alias only the alias is visible, and its column list may rename.
  const int hider = level.hiding_join(entry);
  const std::string qualifier =
      hider >= 0 ? level.items[static_cast<std::size_t>(hider)].alias : e.refname;
  const auto join_columns = hider >= 0 ? level.columns_of(hider) : std::vector<ItemColumn>{};
  const bool coalesced = attribute.phase == Phase::materializing && column.physical;
  auto needed = attribute.expression.columns();
  if (coalesced) needed.push_back(column.original);
  std::vector<std::pair<std::string, std::string>> renamed;
  std::string own_name = column.name;
  for (const auto& name : needed) {
    const auto visible = visible_name(level, entry, hider, join_columns, name);
    if (!visible) return std::nullopt;
    if (*visible != name) renamed.emplace_back(name, *visible);
    if (coalesced && name == column.original) own_name = *visible;
  }
  // A nearer level that shows the same name would capture the qualifier (a known gap).
  for (const Scope* s = &at; s && s != &level; s = s->parent)
    if (s->name_visible(qualifier)) return std::nullopt;
  out_.reads.push_back({&attribute});
  std::string value = attribute.expression.bind(qualifier, renamed);
  if (!attribute.expression.null_propagating() && level.null_extended(entry)) {
    // On the NULL-extended side of an outer join a real column reads NULL; an expression like
    // count(*) over another table would not. System columns are not reachable through a join
    // alias, so that case stays a known gap.
    if (qualifier != e.refname) return std::nullopt;
    value = "CASE WHEN " + pg::quote_identifier(qualifier) + ".ctid IS NULL THEN NULL ELSE (" +
            value + ") END";
  }
  std::string text = "((" + value + "))::" + attribute.type;
  if (coalesced)
    text = "COALESCE(" + pg::quote_identifier(qualifier) + "." + pg::quote_identifier(own_name) +
           ", " + text + ")";
  if (with_name) text += " AS " + pg::quote_identifier(column.name);
  return text;
}

// One column spelled out for a '*' expansion.
std::optional<std::string> Resolver::column_text(const Scope& scope, const ItemColumn& column,
                                                 bool with_name) {
  if (column.entry >= 0) {
    const Entry& e = scope.entries[static_cast<std::size_t>(column.entry)];
    if (e.columns[column.index].rewritten())
      return bind(scope, column.entry, column.index, scope, with_name);
    const int hider = scope.hiding_join(column.entry);
    if (hider < 0) return pg::quote_identifier(e.refname) + "." + pg::quote_identifier(column.name);
    int found = 0;
    for (const auto& c : scope.columns_of(hider)) found += c.name == column.name;
    if (found != 1) return std::nullopt;
    return pg::quote_identifier(scope.items[static_cast<std::size_t>(hider)].alias) + "." +
           pg::quote_identifier(column.name);
  }
  // A merged USING / NATURAL column.
  const Item& join = scope.items[static_cast<std::size_t>(column.join)];
  int outer_hider = -1;
  for (int at = join.parent; at >= 0; at = scope.items[static_cast<std::size_t>(at)].parent)
    if (!scope.items[static_cast<std::size_t>(at)].alias.empty()) outer_hider = at;
  if (outer_hider < 0 && !join.using_alias.empty())
    return pg::quote_identifier(join.using_alias) + "." + pg::quote_identifier(column.name);
  if (outer_hider < 0 && !join.alias.empty())
    return pg::quote_identifier(join.alias) + "." + pg::quote_identifier(column.name);
  if (scope.visible_named(column.name).size() == 1 && outer_hider < 0)
    return pg::quote_identifier(column.name);
  auto side = [&](int item) -> std::optional<std::string> {
    for (const auto& c : scope.columns_of(item))
      if (c.name == column.name) return column_text(scope, c, false);
    return std::nullopt;
  };
  const auto left = side(join.left);
  const auto right = side(join.right);
  if (!left || !right) return std::nullopt;
  const auto suffix = with_name ? " AS " + pg::quote_identifier(column.name) : std::string();
  if (join.join_type == "JOIN_FULL") return "COALESCE(" + *left + ", " + *right + ")" + suffix;
  return (join.join_type == "JOIN_RIGHT" ? *right : *left) + suffix;
}

// The text of '*' over `items`, or nullopt when it needs no change (or cannot be written).
std::optional<std::string> Resolver::star_text(const Scope& scope, const std::vector<int>& items,
                                               bool keep_bare_star) {
  if (!std::any_of(items.begin(), items.end(), [&](int item) { return any_reshaped(scope, item); }))
    return std::nullopt;
  std::string text;
  auto append = [&text](const std::string& piece) {
    if (!text.empty()) text += ", ";
    text += piece;
  };
  bool ok = true;
  auto spell = [&](int item) {
    for (const auto& column : scope.columns_of(item)) {
      const auto piece = column_text(scope, column, true);
      if (!piece) ok = false;
      if (piece) append(*piece);
    }
  };
  auto appended = [&](const Entry& e, int entry) {
    for (std::size_t i = 0; i < e.columns.size(); ++i)
      if (e.columns[i].rewritten()) {
        const auto piece = bind(scope, entry, i, scope, true);
        if (!piece) ok = false;
        if (piece) append(*piece);
      }
  };
  const std::function<void(int)> item_text = [&](int index) {
    const Item& item = scope.items[static_cast<std::size_t>(index)];
    if (item.entry >= 0) {
      const Entry& e = scope.entries[static_cast<std::size_t>(item.entry)];
      if (!any_reshaped(scope, index)) {
        append(pg::quote_identifier(e.refname) + ".*");
      } else if (only_appended(e)) {
        append(pg::quote_identifier(e.refname) + ".*");
        appended(e, item.entry);
      } else {
        spell(index);
      }
    } else if (!any_reshaped(scope, index) && !item.alias.empty()) {
      append(pg::quote_identifier(item.alias) + ".*");
    } else if (item.merged.empty() && item.alias.empty()) {
      item_text(item.left);
      item_text(item.right);
    } else {
      spell(index);
    }
  };
  if (keep_bare_star && items.size() == 1 &&
      scope.items[static_cast<std::size_t>(items[0])].entry >= 0) {
    const int entry = scope.items[static_cast<std::size_t>(items[0])].entry;
    const Entry& e = scope.entries[static_cast<std::size_t>(entry)];
    if (only_appended(e)) {
      text = "*";
      appended(e, entry);
      return ok ? std::optional<std::string>(text) : std::nullopt;
    }
  }
  for (const int item : items) item_text(item);
  if (!ok)
    for (const int item : items) request_wraps_under(scope, item);
  return ok ? std::optional<std::string>(text) : std::nullopt;
}

// Expands '*' or 'alias.*' so seeded attributes appear where ADD COLUMN would put them. Bytes
// [begin, end) are the star; [end, through) an alias after 'alias.*', which PostgreSQL accepts
// and ignores, and which a splice must take out.
bool Resolver::star(const ColumnRefView& view, int begin, int end, int through, Scope& scope,
                    std::vector<std::string>* names, bool bare_star_ok) {
  if (view.names.empty()) {
    bool known = true;
    for (const int item : scope.visible)
      for (const auto& c : scope.columns_of(item)) {
        if (names) names->push_back(c.name);
        if (c.entry >= 0)
          known = known && scope.entries[static_cast<std::size_t>(c.entry)].columns_known;
      }
    if (const auto text = star_text(scope, scope.visible, bare_star_ok))
      out_.edits.push_back({begin, through, *text});
    return known;
  }
  if (view.names.size() > 2) return false;
  for (Scope* level = &scope; level; level = level->parent) {
    const auto named = level->find_named(view.names);
    if (!named) continue;
    if (named->entry >= 0) {
      const Entry& e = level->entries[static_cast<std::size_t>(named->entry)];
      for (const auto& c : e.columns)
        if (names) names->push_back(c.name);
      const bool spelled = !only_appended(e);
      std::string text;
      bool ok = true;
      for (std::size_t i = 0; i < e.columns.size(); ++i) {
        const auto& c = e.columns[i];
        if (!spelled && !c.rewritten()) continue;
        auto piece = c.rewritten() ? bind(*level, named->entry, i, scope, true)
                                   : std::optional<std::string>(pg::quote_identifier(e.refname) +
                                                                "." + pg::quote_identifier(c.name));
        if (!piece) ok = false;
        if (piece) text += (text.empty() ? "" : ", ") + *piece;
      }
      if (ok && !text.empty()) {
        if (spelled)
          out_.edits.push_back({begin, through, text});
        else
          out_.edits.push_back({end, through, ", " + text, begin});  // errors point at 'a.*'
      }
      return e.columns_known;
    }
    const auto columns = level->columns_of(named->join);
    std::vector<ItemColumn> shown;
    for (const auto& c : columns)
      if (!named->using_alias || c.entry < 0) shown.push_back(c);
    for (const auto& c : shown)
      if (names) names->push_back(c.name);
    if (!named->using_alias && level == &scope)
      if (const auto text = star_text(*level, {named->join}, false))
        out_.edits.push_back({begin, through, *text});
    return true;
  }
  return false;
}

int Resolver::target_end(int location) const {
  auto at = token_index(tokens_, location);
  if (!at) return -1;
  int depth = 0;
  int last = -1;
  for (std::size_t i = *at; i < tokens_.size(); ++i) {
    const Token& t = tokens_[i];
    if (depth == 0) {
      if (t.single == ',' || t.single == ';' || t.single == ')') break;
      if (t.kind == TokenKind::reserved_keyword &&
          std::any_of(std::begin(item_terminators), std::end(item_terminators),
                      [&](std::string_view word) { return token_is(request_.sql, t, word); }))
        break;
    }
    if (t.single == '(' || t.single == '[') ++depth;
    if (t.single == ')' || t.single == ']') --depth;
    last = t.end;
  }
  return last;
}

bool Resolver::target_list(const Json& list, Scope& scope, std::vector<std::string>* names) {
  bool known = true;
  for (const auto& item : list) {
    if (failed()) return known;
    const auto& target = node_at(item, "ResTarget");
    const auto& value = node_at(target, "val");
    const bool has_alias = target.contains("name");
    const auto& ref = node_at(value, "ColumnRef");
    if (!ref.is_null()) {
      const auto view = read_column_ref(ref);
      if (view.star) {
        const auto end =
            end_after_tokens(tokens_, view.location, static_cast<int>(view.names.size() * 2 + 1));
        const int item_end = has_alias ? target_end(view.location) : -1;
        if (end)
          known = star(view, view.location, *end, std::max(*end, item_end), scope, names, true) &&
                  known;
        continue;
      }
    }
    const Json* leaf = has_alias ? nullptr : name_leaf(value);
    name_leaf_ = leaf;
    name_leaf_spliced_ = false;
    {
      const UseRows output(*this, output_use());
      expression(value, scope);
    }
    name_leaf_ = nullptr;
    if (leaf && name_leaf_spliced_) {
      // The spliced expression would be named after its cast: keep the attribute's name.
      const int end = target_end(target.value("location", -1));
      if (end >= 0)
        out_.edits.push_back({end, end, " AS " + pg::quote_identifier(leaf_name(*leaf))});
    }
    if (names) names->push_back(has_alias ? string_at(target, "name") : column_names_.of(value));
  }
  return known;
}

// ORDER BY and DISTINCT ON: a bare name that is an output column means that column.
void Resolver::sort_items(const Json& list, Scope& scope, const std::vector<std::string>& names) {
  for (const auto& item : list) {
    const auto& sort_by = node_at(item, "SortBy");
    const auto& node = sort_by.is_null() ? item : node_at(sort_by, "node");
    const auto& ref = node_at(node, "ColumnRef");
    if (!ref.is_null()) {
      const auto view = read_column_ref(ref);
      if (view.names.size() == 1 && !view.star &&
          std::find(names.begin(), names.end(), view.names[0]) != names.end())
        continue;
    }
    const UseRows sorted(*this, RowUse::neutral);
    expression(node, scope);
  }
}

}  // namespace seedproxy::rewriter
