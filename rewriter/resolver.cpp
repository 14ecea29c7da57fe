// PostgreSQL's column resolution rules, re-enacted over the parse tree for virtual attributes:
// scopes of FROM entries and CTEs, correlated references, ambiguity, '*' expansion, and refusals
// of writes exactly as PostgreSQL words them for generated columns.
#include "rewriter/resolver.hpp"

#include <algorithm>

#include "rewriter/sql_text.hpp"

namespace seedproxy::rewriter {
namespace {

struct Entry {
  std::string refname;  // alias, or the relation / function name
  std::string schema;   // relations only
  std::string relname;
  bool aliased = false;
  bool columns_known = false;
  std::vector<std::string> columns;
  std::vector<const VirtualAttribute*> virtual_at;  // parallel to columns; null when physical
};

struct Cte {
  std::string name;
  std::vector<std::string> columns;
  bool columns_known = false;
};

struct Scope {
  Scope* parent = nullptr;
  std::vector<Entry> entries;
  std::vector<Cte> ctes;
  std::vector<std::string> merged_columns;  // USING / NATURAL join columns
  bool has_merged_joins = false;
};

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// 1-based character position of a byte offset, as PostgreSQL reports positions.
int character_position(std::string_view sql, int byte_offset) {
  int position = 1;
  for (int i = 0; i < byte_offset && i < static_cast<int>(sql.size()); ++i)
    if ((static_cast<unsigned char>(sql[static_cast<std::size_t>(i)]) & 0xC0) != 0x80) ++position;
  return position;
}

class Resolver {
 public:
  Resolver(const RewriteRequest& request, const std::vector<Token>& tokens)
      : request_(request), tokens_(tokens) {}

  void statement(const Json& node, Scope* parent) {
    if (failed()) return;
    for_tagged(node, [&](const std::string& kind, const Json& body) {
      if (kind == "SelectStmt") {
        select(body, parent);
      } else if (kind == "InsertStmt") {
        insert(body, parent);
      } else if (kind == "UpdateStmt") {
        update(body, parent);
      } else if (kind == "DeleteStmt") {
        delete_(body, parent);
      } else if (kind == "CopyStmt") {
        copy(body);
      } else if (kind == "ExplainStmt" || kind == "PrepareStmt" || kind == "DeclareCursorStmt" ||
                 kind == "CreateTableAsStmt" || kind == "ViewStmt") {
        statement(node_at(body, "query"), parent);
      }
    });
  }

  Resolution take() { return std::move(out_); }

 private:
  [[nodiscard]] bool failed() const { return out_.error.has_value(); }

  void fail(std::string sqlstate, std::string message, std::string detail, int position = 0) {
    if (failed()) return;
    out_.error = SqlError{std::move(sqlstate), std::move(message), std::move(detail), position};
  }

  // ---- FROM entries -------------------------------------------------------------------------

  const Cte* find_cte(const Scope* scope, const std::string& name) const {
    for (; scope; scope = scope->parent)
      for (const auto& cte : scope->ctes)
        if (cte.name == name) return &cte;
    return nullptr;
  }

  static void apply_alias(const Json& range, Entry& entry) {
    const auto it = range.find("alias");
    if (it == range.end()) return;
    entry.refname = string_at(*it, "aliasname");
    entry.aliased = true;
    std::size_t i = 0;
    for (const auto& colname : list_at(*it, "colnames")) {
      const auto name = string_at(node_at(colname, "String"), "sval");
      if (i < entry.columns.size()) {
        entry.columns[i] = name;
      } else {
        entry.columns.push_back(name);
        entry.virtual_at.push_back(nullptr);
      }
      ++i;
    }
    if (i > 0 && !entry.columns_known && i >= entry.columns.size()) entry.columns_known = true;
  }

  Entry relation_entry(const Json& range_var, const Scope* scope) {
    Entry entry;
    entry.schema = string_at(range_var, "schemaname");
    entry.relname = string_at(range_var, "relname");
    entry.refname = entry.relname;
    const Cte* cte = entry.schema.empty() ? find_cte(scope, entry.relname) : nullptr;
    if (cte) {
      entry.columns = cte->columns;
      entry.columns_known = cte->columns_known;
      entry.virtual_at.assign(entry.columns.size(), nullptr);
    } else {
      const Relation* relation = entry.schema.empty()
                                     ? request_.catalog.resolve(request_.search_path, entry.relname)
                                     : request_.catalog.find(entry.schema, entry.relname);
      if (relation) {
        entry.schema = relation->schema;
        entry.columns = relation->columns;
        entry.virtual_at.assign(entry.columns.size(), nullptr);
        entry.columns_known = true;
        for (const auto* attribute :
             request_.seeds.resolved_for(relation->schema, relation->name)) {
          entry.columns.push_back(attribute->name);
          entry.virtual_at.push_back(attribute);
        }
      }
    }
    apply_alias(range_var, entry);
    return entry;
  }

  void from_item(const Json& item, Scope& scope) {
    for_tagged(item, [&](const std::string& kind, const Json& body) {
      if (kind == "RangeVar") {
        scope.entries.push_back(relation_entry(body, &scope));
      } else if (kind == "RangeSubselect") {
        Entry entry;
        entry.columns =
            select(node_at(node_at(body, "subquery"), "SelectStmt"), &scope, &entry.columns_known);
        entry.virtual_at.assign(entry.columns.size(), nullptr);
        apply_alias(body, entry);
        scope.entries.push_back(std::move(entry));
      } else if (kind == "JoinExpr") {
        const std::size_t first = scope.entries.size();
        from_item(node_at(body, "larg"), scope);
        const std::size_t middle = scope.entries.size();
        from_item(node_at(body, "rarg"), scope);
        for (const auto& name : list_at(body, "usingClause")) {
          scope.merged_columns.push_back(string_at(node_at(name, "String"), "sval"));
          scope.has_merged_joins = true;
        }
        if (body.value("isNatural", false)) {
          scope.has_merged_joins = true;
          natural_columns(scope, first, middle);
        }
        if (const auto it = body.find("quals"); it != body.end()) expression(*it, scope);
      } else if (kind == "RangeFunction") {
        Entry entry;
        for (const auto& function : list_at(body, "functions")) expression(function, scope);
        const auto& functions = list_at(body, "functions");
        if (!functions.empty() && functions[0].is_array() && !functions[0].empty()) {
          const auto& call = node_at(functions[0][0], "FuncCall");
          const auto& names = list_at(call, "funcname");
          if (!names.empty()) entry.refname = string_at(node_at(names.back(), "String"), "sval");
        }
        apply_alias(body, entry);
        scope.entries.push_back(std::move(entry));
      } else {
        // Table samples, XMLTABLE and friends: visible by alias, columns not modelled.
        Entry entry;
        if (const auto relation = body.find("relation"); relation != body.end())
          for_tagged(*relation, [&](const std::string& inner, const Json& range_var) {
            if (inner == "RangeVar") entry = relation_entry(range_var, &scope);
          });
        apply_alias(body, entry);
        scope.entries.push_back(std::move(entry));
      }
    });
  }

  static void natural_columns(Scope& scope, std::size_t first, std::size_t middle) {
    std::vector<std::string> left;
    for (std::size_t i = first; i < middle; ++i)
      for (const auto& c : scope.entries[i].columns) left.push_back(c);
    for (std::size_t i = middle; i < scope.entries.size(); ++i)
      for (const auto& c : scope.entries[i].columns)
        if (contains(left, c) && !contains(scope.merged_columns, c))
          scope.merged_columns.push_back(c);
  }

  void with_clause(const Json& body, Scope& scope) {
    const auto it = body.find("withClause");
    if (it == body.end()) return;
    for (const auto& node : list_at(*it, "ctes")) {
      const auto& cte = node_at(node, "CommonTableExpr");
      Cte defined;
      defined.name = string_at(cte, "ctename");
      // A recursive CTE sees itself; its columns come from the non-recursive term.
      const auto& query = node_at(cte, "ctequery");
      const auto& select_body = node_at(query, "SelectStmt");
      if (!select_body.is_null() && select_body.value("op", "") != "SETOP_NONE" &&
          select_body.contains("larg") && it->value("recursive", false)) {
        bool known = false;
        defined.columns = output_names_only(node_at(select_body, "larg"), &scope, known);
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
      const auto& aliases = list_at(cte, "aliascolnames");
      for (std::size_t i = 0; i < aliases.size() && i < columns.size(); ++i)
        columns[i] = string_at(node_at(aliases[i], "String"), "sval");
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

  // Output names of a SELECT without recording any edit (for a recursive CTE's own columns).
  std::vector<std::string> output_names_only(const Json& body, Scope* parent, bool& known) {
    Resolver probe(request_, tokens_);
    auto names = probe.select(body, parent, &known);
    return names;
  }

  // ---- SELECT -------------------------------------------------------------------------------

  std::vector<std::string> select(const Json& body, Scope* parent, bool* known = nullptr) {
    bool ignored = false;
    bool& names_known = known ? *known : ignored;
    names_known = false;
    std::vector<std::string> names;
    if (body.is_null() || failed()) return names;
    Scope scope;
    scope.parent = parent;
    with_clause(body, scope);

    if (body.value("op", "SETOP_NONE") != "SETOP_NONE") {
      bool left_known = false;
      // Set-operation arms are SelectStmt bodies without the node tag.
      names = select(node_at(body, "larg"), &scope, &left_known);
      select(node_at(body, "rarg"), &scope);
      names_known = left_known;
      // ORDER BY of a set operation may name only output columns: nothing to resolve there.
      Scope empty;
      empty.parent = parent;
      for (const char* key : {"limitOffset", "limitCount"})
        if (const auto it = body.find(key); it != body.end()) expression(*it, empty);
      return names;
    }

    for (const auto& item : list_at(body, "fromClause")) from_item(item, scope);
    for (const auto& row : list_at(body, "valuesLists")) expression(row, scope);
    names_known = target_list(list_at(body, "targetList"), scope, &names);
    for (const char* key : {"whereClause", "groupClause", "havingClause", "windowClause",
                            "distinctClause", "limitOffset", "limitCount"})
      if (const auto it = body.find(key); it != body.end()) expression(*it, scope);
    for (const auto& sort : list_at(body, "sortClause")) {
      const auto& node = node_at(node_at(sort, "SortBy"), "node");
      const auto& ref = node_at(node, "ColumnRef");
      if (!ref.is_null()) {
        const auto view = read_column_ref(ref);
        // ORDER BY prefers an output column of that name, which already carries the value.
        if (view.names.size() == 1 && !view.star && contains(names, view.names[0])) continue;
      }
      expression(node, scope);
    }
    const auto& values = list_at(body, "valuesLists");
    if (!values.empty() && values[0].is_array()) {
      for (std::size_t i = 1; i <= values[0].size(); ++i)
        names.push_back("column" + std::to_string(i));
      names_known = true;
    }
    return names;
  }

  // Walks a target list; collects output names; returns whether all of them are known.
  bool target_list(const Json& list, Scope& scope, std::vector<std::string>* names) {
    bool known = true;
    for (const auto& item : list) {
      const auto& target = node_at(item, "ResTarget");
      const auto& value = node_at(target, "val");
      const bool has_alias = target.contains("name");
      const auto& ref = node_at(value, "ColumnRef");
      if (!ref.is_null()) {
        const auto view = read_column_ref(ref);
        if (view.star) {
          known = star(view, scope, names) && known;
          continue;
        }
        column_ref(view, scope, !has_alias);
      } else {
        expression(value, scope);
      }
      if (names) names->push_back(has_alias ? string_at(target, "name") : figure_name(value));
    }
    return known;
  }

  // Expands '*' or 'alias.*' so virtual attributes appear where ADD COLUMN would put them.
  bool star(const ColumnRefView& view, Scope& scope, std::vector<std::string>* names) {
    const int star_count = static_cast<int>(view.names.size() * 2 + 1);
    const auto end = end_after_tokens(tokens_, view.location, star_count);
    bool known = true;
    if (view.names.size() == 1) {
      for (const auto& entry : scope.entries) {
        if (entry.refname != view.names[0]) continue;
        if (names) names->insert(names->end(), entry.columns.begin(), entry.columns.end());
        std::string added;
        for (std::size_t i = 0; i < entry.columns.size(); ++i)
          if (entry.virtual_at[i]) added += ", " + bound(entry, i, true);
        if (!added.empty() && end) out_.edits.push_back({*end, *end, added});
        return entry.columns_known;
      }
      return false;
    }
    if (!view.names.empty()) return false;
    bool any_virtual = false;
    for (const auto& entry : scope.entries) {
      known = known && entry.columns_known;
      for (const auto* v : entry.virtual_at) any_virtual = any_virtual || v;
    }
    if (names) {
      for (const auto& merged : scope.merged_columns) names->push_back(merged);
      for (const auto& entry : scope.entries)
        for (const auto& column : entry.columns)
          if (!contains(scope.merged_columns, column)) names->push_back(column);
    }
    if (!any_virtual || !end) return known;
    std::string text;
    auto append = [&text](const std::string& piece) {
      if (!text.empty()) text += ", ";
      text += piece;
    };
    if (scope.has_merged_joins) {
      // Merged columns come first and appear once; spell every column out.
      if (!known) return known;
      for (const auto& merged : scope.merged_columns) append(quote_identifier(merged));
      for (const auto& entry : scope.entries)
        for (std::size_t i = 0; i < entry.columns.size(); ++i) {
          if (contains(scope.merged_columns, entry.columns[i])) continue;
          append(entry.virtual_at[i]
                     ? bound(entry, i, true)
                     : quote_identifier(entry.refname) + "." + quote_identifier(entry.columns[i]));
        }
    } else if (scope.entries.size() == 1) {
      text = "*";
      for (std::size_t i = 0; i < scope.entries[0].columns.size(); ++i)
        if (scope.entries[0].virtual_at[i]) append(bound(scope.entries[0], i, true));
    } else {
      for (const auto& entry : scope.entries) {
        append(quote_identifier(entry.refname) + ".*");
        for (std::size_t i = 0; i < entry.columns.size(); ++i)
          if (entry.virtual_at[i]) append(bound(entry, i, true));
      }
    }
    out_.edits.push_back({view.location, *end, text});
    return known;
  }

  // PostgreSQL's FigureColname, for the cases that name subquery and CTE columns.
  std::string figure_name(const Json& value) const {
    std::string name = "?column?";
    for_tagged(value, [&](const std::string& kind, const Json& body) {
      if (kind == "ColumnRef") {
        const auto view = read_column_ref(body);
        if (!view.names.empty() && !view.star) name = view.names.back();
      } else if (kind == "FuncCall") {
        const auto& parts = list_at(body, "funcname");
        if (!parts.empty()) name = string_at(node_at(parts.back(), "String"), "sval");
      } else if (kind == "TypeCast") {
        name = figure_name(node_at(body, "arg"));
        if (name == "?column?") {
          const auto& parts = list_at(node_at(body, "typeName"), "names");
          if (!parts.empty()) name = string_at(node_at(parts.back(), "String"), "sval");
        }
      } else if (kind == "A_Indirection") {
        const auto& steps = list_at(body, "indirection");
        if (!steps.empty() && steps.back().contains("String"))
          name = string_at(node_at(steps.back(), "String"), "sval");
        else
          name = figure_name(node_at(body, "arg"));
      } else if (kind == "CaseExpr") {
        name = "case";
      } else if (kind == "CoalesceExpr") {
        name = "coalesce";
      } else if (kind == "MinMaxExpr") {
        name = body.value("op", "") == "IS_GREATEST" ? "greatest" : "least";
      } else if (kind == "A_ArrayExpr") {
        name = "array";
      } else if (kind == "RowExpr") {
        name = "row";
      } else if (kind == "GroupingFunc") {
        name = "grouping";
      } else if (kind == "SubLink") {
        const auto type = body.value("subLinkType", "");
        if (type == "EXISTS_SUBLINK") name = "exists";
        if (type == "ARRAY_SUBLINK") name = "array";
        if (type == "EXPR_SUBLINK") {
          const auto& targets =
              list_at(node_at(node_at(body, "subselect"), "SelectStmt"), "targetList");
          if (!targets.empty()) {
            const auto& target = node_at(targets[0], "ResTarget");
            name = target.contains("name") ? string_at(target, "name")
                                           : figure_name(node_at(target, "val"));
          }
        }
      }
    });
    return name;
  }

  // ---- expressions and column references ----------------------------------------------------

  void expression(const Json& node, Scope& scope) {
    if (failed()) return;
    if (node.is_array()) {
      for (const auto& child : node) expression(child, scope);
      return;
    }
    if (!node.is_object()) return;
    if (node.size() == 1) {
      const auto it = node.begin();
      if (it.key() == "ColumnRef") {
        const auto view = read_column_ref(it.value());
        if (!view.star) column_ref(view, scope, false);
        return;
      }
      if (it.key() == "SelectStmt") {
        select(it.value(), &scope);
        return;
      }
      if (it.key() == "SubLink") {
        if (const auto test = it.value().find("testexpr"); test != it.value().end())
          expression(*test, scope);
        select(node_at(node_at(it.value(), "subselect"), "SelectStmt"), &scope);
        return;
      }
    }
    for (const auto& [key, child] : node.items()) expression(child, scope);
  }

  // The text that replaces a reference to virtual column `index` of `entry`.
  std::string bound(const Entry& entry, std::size_t index, bool with_name) {
    const VirtualAttribute& attribute = *entry.virtual_at[index];
    out_.reads.push_back({&attribute});
    std::string text = "((" + attribute.expression.bind(entry.refname) + "))::" + attribute.type;
    if (attribute.phase == Phase::materializing)
      text = "COALESCE(" + quote_identifier(entry.refname) + "." +
             quote_identifier(attribute.name) + ", " + text + ")";
    if (with_name) text += " AS " + quote_identifier(entry.columns[index]);
    return text;
  }

  static bool qualifies(const Entry& entry, const std::vector<std::string>& names) {
    if (names.size() == 2) return entry.refname == names[0];
    return !entry.aliased && entry.schema == names[0] && entry.relname == names[1];
  }

  void emit(const ColumnRefView& view, const Entry& entry, std::size_t index, bool bare_target) {
    const auto end =
        end_after_tokens(tokens_, view.location, static_cast<int>(view.names.size() * 2 - 1));
    if (end) out_.edits.push_back({view.location, *end, bound(entry, index, bare_target)});
  }

  void column_ref(const ColumnRefView& view, Scope& scope, bool bare_target) {
    const auto& names = view.names;
    if (names.empty() || names.size() > 3) return;
    const std::string& column = names.back();
    for (Scope* level = &scope; level; level = level->parent) {
      if (names.size() > 1) {
        // A qualified reference belongs to the nearest entry its qualifier names.
        const auto entry = std::find_if(level->entries.begin(), level->entries.end(),
                                        [&](const Entry& e) { return qualifies(e, names); });
        if (entry == level->entries.end()) continue;
        for (std::size_t i = 0; i < entry->columns.size(); ++i)
          if (entry->columns[i] == column) {
            if (entry->virtual_at[i]) emit(view, *entry, i, bare_target);
            return;
          }
        return;
      }
      if (contains(level->merged_columns, column)) return;
      const Entry* hit = nullptr;
      std::size_t hit_index = 0;
      int matches = 0;
      bool virtual_match = false;
      for (const auto& entry : level->entries)
        for (std::size_t i = 0; i < entry.columns.size(); ++i)
          if (entry.columns[i] == column) {
            ++matches;
            hit = &entry;
            hit_index = i;
            virtual_match = virtual_match || entry.virtual_at[i];
          }
      if (matches == 0) continue;
      if (matches > 1) {
        // A physical column of the same name elsewhere in scope: PostgreSQL's own error.
        if (virtual_match)
          fail("42702", "column reference \"" + column + "\" is ambiguous", {},
               character_position(request_.sql, view.location));
        return;
      }
      if (hit->virtual_at[hit_index]) emit(view, *hit, hit_index, bare_target);
      return;
    }
  }

  // ---- data-modifying statements ------------------------------------------------------------

  Entry target_entry(const Json& body, const Scope& scope) {
    return relation_entry(node_at(node_at(body, "relation"), "RangeVar").is_null()
                              ? node_at(body, "relation")
                              : node_at(node_at(body, "relation"), "RangeVar"),
                          &scope);
  }

  const VirtualAttribute* virtual_column(const Entry& entry, const std::string& name) const {
    for (std::size_t i = 0; i < entry.columns.size(); ++i)
      if (entry.columns[i] == name && entry.virtual_at[i]) return entry.virtual_at[i];
    return nullptr;
  }

  void refuse_insert(const std::string& column) {
    fail("428C9", "cannot insert a non-DEFAULT value into column \"" + column + "\"",
         "Column \"" + column + "\" is a generated column.");
  }

  void refuse_update(const std::string& column) {
    fail("428C9", "column \"" + column + "\" can only be updated to DEFAULT",
         "Column \"" + column + "\" is a generated column.");
  }

  void returning(const Json& body, Scope& scope) {
    returning_names_.clear();
    returning_known_ = target_list(list_at(body, "returningList"), scope, &returning_names_);
  }

  void insert(const Json& body, Scope* parent) {
    Scope scope;
    scope.parent = parent;
    with_clause(body, scope);
    Entry target = target_entry(body, scope);
    const auto& columns = list_at(body, "cols");
    for (const auto& column : columns) {
      const auto name = string_at(node_at(column, "ResTarget"), "name");
      if (virtual_column(target, name)) return refuse_insert(name);
    }
    const auto& source = node_at(node_at(body, "selectStmt"), "SelectStmt");
    if (columns.empty() && !source.is_null()) {
      // Without a column list, values beyond the physical columns would land in the attribute.
      std::size_t physical = 0;
      while (physical < target.virtual_at.size() && !target.virtual_at[physical]) ++physical;
      for (const auto& row : list_at(source, "valuesLists"))
        if (row.is_array() && row.size() > physical && physical < target.columns.size() &&
            !row[physical].contains("SetToDefault"))
          return refuse_insert(target.columns[physical]);
    }
    select(source, &scope);
    if (const auto it = body.find("onConflictClause"); it != body.end()) {
      Scope conflict;
      conflict.parent = &scope;
      conflict.entries.push_back(target);
      Entry excluded = target;
      excluded.refname = "excluded";
      excluded.aliased = true;
      conflict.entries.push_back(std::move(excluded));
      for (const auto& item : list_at(*it, "targetList")) {
        const auto& set = node_at(item, "ResTarget");
        if (virtual_column(target, string_at(set, "name")))
          return refuse_update(string_at(set, "name"));
        expression(node_at(set, "val"), conflict);
      }
      if (const auto where = it->find("whereClause"); where != it->end())
        expression(*where, conflict);
      if (const auto infer = it->find("infer"); infer != it->end()) expression(*infer, conflict);
    }
    scope.entries.push_back(std::move(target));
    returning(body, scope);
  }

  void update(const Json& body, Scope* parent) {
    Scope scope;
    scope.parent = parent;
    with_clause(body, scope);
    scope.entries.push_back(target_entry(body, scope));
    for (const auto& item : list_at(body, "fromClause")) from_item(item, scope);
    for (const auto& item : list_at(body, "targetList")) {
      const auto& set = node_at(item, "ResTarget");
      if (virtual_column(scope.entries.front(), string_at(set, "name")))
        return refuse_update(string_at(set, "name"));
      expression(node_at(set, "val"), scope);
    }
    if (const auto it = body.find("whereClause"); it != body.end()) expression(*it, scope);
    returning(body, scope);
  }

  void delete_(const Json& body, Scope* parent) {
    Scope scope;
    scope.parent = parent;
    with_clause(body, scope);
    scope.entries.push_back(target_entry(body, scope));
    for (const auto& item : list_at(body, "usingClause")) from_item(item, scope);
    if (const auto it = body.find("whereClause"); it != body.end()) expression(*it, scope);
    returning(body, scope);
  }

  void copy(const Json& body) {
    if (const auto query = body.find("query"); query != body.end()) {
      statement(*query, nullptr);
      return;
    }
    Scope scope;
    const Entry target = target_entry(body, scope);
    for (const auto& column : list_at(body, "attlist")) {
      const auto name = string_at(node_at(column, "String"), "sval");
      if (virtual_column(target, name))
        return fail("42P10", "column \"" + name + "\" is a generated column",
                    "Generated columns cannot be used in COPY.");
    }
  }

  const RewriteRequest& request_;
  const std::vector<Token>& tokens_;
  Resolution out_;
  std::vector<std::string> returning_names_;
  bool returning_known_ = false;
};

}  // namespace

Resolution resolve_statement(const Json& statement, const RewriteRequest& request,
                             const std::vector<Token>& tokens) {
  Resolver resolver(request, tokens);
  resolver.statement(statement, nullptr);
  return resolver.take();
}

}  // namespace seedproxy::rewriter
