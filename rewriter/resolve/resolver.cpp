// Statements, clause by clause in the order PostgreSQL's parse analysis visits them: SELECT
// (set operations, VALUES, TABLE), INSERT, UPDATE, DELETE, MERGE, COPY and the statements that
// wrap a query (EXPLAIN, PREPARE, DECLARE, CREATE TABLE AS, CREATE VIEW, CREATE RULE).
#include <algorithm>

#include "common/sqlstate.hpp"
#include "common/text.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {

const Json& list_items(const Json& node) {
  if (node.is_array()) return node;
  return list_at(node_at(node, "List"), "items");
}

int leftmost_location(const Json& node) {
  int best = -1;
  if (node.is_object()) {
    for (const auto& [key, child] : node.items()) {
      int at = -1;
      if (key == "location" && child.is_number_integer())
        at = child.get<int>();
      else if (child.is_structured())
        at = leftmost_location(child);
      if (at >= 0 && (best < 0 || at < best)) best = at;
    }
  } else if (node.is_array()) {
    for (const auto& child : node) {
      const int at = leftmost_location(child);
      if (at >= 0 && (best < 0 || at < best)) best = at;
    }
  }
  return best;
}

void Resolver::fail(std::string sqlstate, std::string message, std::string detail, int position) {
  if (failed()) return;
  analysis_error_ = SqlError{std::move(sqlstate), std::move(message), std::move(detail), position};
}

void Resolver::refuse(std::string sqlstate, std::string message, std::string detail) {
  if (rewrite_error_) return;
  rewrite_error_ = SqlError{std::move(sqlstate), std::move(message), std::move(detail), 0};
}

// 1-based character position of a byte offset, as PostgreSQL reports positions.
int Resolver::position_of(int byte_offset) const {
  const auto bytes = std::min<std::size_t>(static_cast<std::size_t>(std::max(byte_offset, 0)),
                                           request_.sql.size());
  return 1 + static_cast<int>(text::utf8_count(request_.sql.substr(0, bytes)));
}

Resolver::Depth::Depth(Resolver& resolver) : resolver_(resolver) {
  if (++resolver_.depth_ == max_depth + 1)
    resolver_.fail(sqlstate::statement_too_complex, "stack depth limit exceeded",
                   "seedproxy resolves statements nested at most " + std::to_string(max_depth) +
                       " levels deep.");
}

Resolution Resolver::take() {
  if (analysis_error_)
    out_.error = std::move(analysis_error_);
  else if (rewrite_error_)
    out_.error = std::move(rewrite_error_);
  out_.naming_steps = column_names_.steps();
  return std::move(out_);
}

bool resolved_kind(std::string_view kind) noexcept {
  // Every kind Resolver::statement below dispatches on; keep the two in step.
  static constexpr std::string_view kinds[] = {
      "SelectStmt",        "InsertStmt",  "UpdateStmt",        "DeleteStmt",        "MergeStmt",
      "CopyStmt",          "ExplainStmt", "PrepareStmt",       "DeclareCursorStmt", "ViewStmt",
      "CreateTableAsStmt", "RuleStmt",    "CreateFunctionStmt"};
  return std::find(std::begin(kinds), std::end(kinds), kind) != std::end(kinds);
}

void Resolver::statement(const Json& node, Scope* parent) {
  if (failed()) return;
  for_tagged(node, [&](std::string_view kind, const Json& body) {
    if (kind == "SelectStmt") {
      select(body, parent);
    } else if (kind == "InsertStmt") {
      insert(body, parent);
    } else if (kind == "UpdateStmt") {
      update(body, parent);
    } else if (kind == "DeleteStmt") {
      delete_(body, parent);
    } else if (kind == "MergeStmt") {
      merge(body, parent);
    } else if (kind == "CopyStmt") {
      copy(body);
    } else if (kind == "ExplainStmt" || kind == "PrepareStmt" || kind == "DeclareCursorStmt") {
      statement(node_at(body, "query"), parent);
    } else if (kind == "CreateTableAsStmt" || kind == "ViewStmt") {
      const StoredOutput stored(*this, true);
      statement(node_at(body, "query"), parent);
    } else if (kind == "RuleStmt") {
      rule(body, parent);
    } else if (kind == "AlterTableStmt") {
      alter_table(body);
    } else if (kind == "RenameStmt") {
      rename(body);
    } else if (kind == "CreateFunctionStmt") {
      const StoredOutput stored(*this, true);
      // A BEGIN ATOMIC body is parsed with the statement, so it is rewritten like a view's
      // query: {"List": {"items": [{"List": {"items": [statements]}}]}}; string bodies are not.
      for (const auto& block : list_at(node_at(node_at(body, "sql_body"), "List"), "items")) {
        const auto& inner = node_at(block, "List");
        if (inner.is_null())
          statement(block, parent);
        else
          for (const auto& each : list_at(inner, "items")) statement(each, parent);
      }
    }
  });
}

std::vector<std::string> Resolver::select(const Json& body, Scope* parent, bool* known) {
  bool ignored = false;
  bool& names_known = known ? *known : ignored;
  names_known = false;
  std::vector<std::string> names;
  const Depth depth(*this);
  if (!body.is_object() || failed() || depth.too_deep()) return names;
  // Clauses use whole rows as operands unless they say otherwise; SELECT INTO stores its output.
  const UseRows operands(*this, RowUse::physical);
  const StoredOutput into(*this, stored_output_ || body.contains("intoClause"));
  Scope scope;
  scope.parent = parent;
  with_clause(body, scope);

  if (const auto op = body.find("op"); op != body.end() && *op != "SETOP_NONE") {
    // Set operation branches are untagged SelectStmt bodies.
    names = select(node_at(body, "larg"), &scope, &names_known);
    select(node_at(body, "rarg"), &scope);
    // Its ORDER BY may name only output columns; LIMIT sees no columns at all.
    for (const char* key : {"limitOffset", "limitCount"})
      if (const auto it = body.find(key); it != body.end()) expression(*it, scope);
    return names;
  }

  const auto& values = list_at(body, "valuesLists");
  if (!values.empty()) {
    const UseRows output(*this, output_use());
    for (const auto& row : values) expression(row, scope);
    for (std::size_t i = 1; i <= list_items(values[0]).size(); ++i)
      names.push_back("column" + std::to_string(i));
    names_known = true;
  }
  from_clause(list_at(body, "fromClause"), scope);
  const auto& targets = list_at(body, "targetList");
  const auto& first_ref =
      targets.empty() ? Json()
                      : node_at(node_at(node_at(targets[0], "ResTarget"), "val"), "ColumnRef");
  if (targets.size() == 1 && first_ref.is_object() && first_ref.value("location", 0) < 0) {
    table_form(body, scope);  // TABLE name: a '*' the parser made up, with no location
    for (const auto& column : scope.visible_columns()) names.push_back(column.name);
    names_known = true;
  } else if (values.empty()) {
    names_known = target_list(targets, scope, &names);
  }
  if (const auto it = body.find("whereClause"); it != body.end()) expression(*it, scope);
  if (const auto it = body.find("havingClause"); it != body.end()) expression(*it, scope);
  sort_items(list_at(body, "sortClause"), scope, names);
  sort_items(list_at(body, "distinctClause"), scope, names);
  for (const char* key : {"limitOffset", "limitCount"})
    if (const auto it = body.find(key); it != body.end()) expression(*it, scope);
  const UseRows grouped(*this, RowUse::neutral);
  for (const char* key : {"groupClause", "windowClause"})
    if (const auto it = body.find(key); it != body.end()) expression(*it, scope);
  return names;
}

// "TABLE name" becomes "SELECT *, … FROM name" when the table has seeded attributes.
void Resolver::table_form(const Json& body, Scope& scope) {
  const auto& from = list_at(body, "fromClause");
  if (from.size() != 1) return;
  const auto text = star_text(scope, scope.visible, true);
  const auto at = token_index(tokens_, node_at(from[0], "RangeVar").value("location", -1));
  if (!text || !at) return;
  for (std::size_t back = 1; back <= 2 && back <= *at; ++back) {
    const Token& token = tokens_[*at - back];
    if (token_is(request_.sql, token, "table")) {
      // PostgreSQL gives the columns of TABLE's '*' no position, so neither do these.
      out_.edits.push_back({token.start, token.end, "SELECT " + *text + " FROM", Edit::no_anchor});
      return;
    }
  }
}

// CREATE RULE: PostgreSQL stores the WHERE clause and the actions as written, so they are
// rewritten like a view's query. OLD and NEW are entries of the rule's table that qualified
// names see in the actions; in the WHERE clause the ones the event has also take unqualified
// names (parse_utilcmd.c, transformRuleStmt).
void Resolver::rule(const Json& body, Scope* parent) {
  Scope scope;
  scope.parent = parent;
  const auto event = body.value("event", "");
  std::vector<int> in_where;
  for (const char* name : {"old", "new"}) {
    Scope no_ctes;  // a rule's table is always a table
    Entry entry = relation_entry(node_at(body, "relation"), no_ctes);
    entry.refname = name;
    entry.aliased = true;
    const int item = scope.add_leaf(std::move(entry));
    scope.named_only.push_back(item);
    const bool old_row = std::string_view(name) == "old";
    if (old_row ? event != "CMD_INSERT" : event == "CMD_INSERT" || event == "CMD_UPDATE")
      in_where.push_back(item);
  }
  if (const auto it = body.find("whereClause"); it != body.end()) {
    scope.visible = in_where;
    expression(*it, scope);
    scope.visible.clear();
  }
  // An ON SELECT rule's query is a view's: its output is stored.
  const StoredOutput stored(*this, stored_output_ || event == "CMD_SELECT");
  for (const auto& action : list_at(body, "actions")) statement(action, &scope);
}

void Resolver::returning(const Json& body, Scope& scope) {
  returning_names_.clear();
  returning_known_ = target_list(list_at(body, "returningList"), scope, &returning_names_);
}

void Resolver::insert(const Json& body, Scope* parent) {
  Scope scope;
  scope.parent = parent;
  with_clause(body, scope);
  const auto& source = node_at(node_at(body, "selectStmt"), "SelectStmt");
  bool source_known = false;
  std::vector<std::string> source_names;
  {
    const StoredOutput stored(*this, true);  // its rows go into the table's typed columns
    source_names = select(source, &scope, &source_known);
  }
  const int target = target_relation(body, scope);
  insert_target(body, scope, target, source, source_known ? source_names.size() : 0);
  if (failed()) return;
  if (const auto it = body.find("onConflictClause"); it != body.end()) {
    scope.visible = {target};
    if (const auto infer = it->find("infer"); infer != it->end()) expression(*infer, scope);
    Entry excluded =
        scope
            .entries[static_cast<std::size_t>(scope.items[static_cast<std::size_t>(target)].entry)];
    excluded.refname = "excluded";
    excluded.aliased = true;
    scope.visible.push_back(scope.add_leaf(std::move(excluded)));
    set_list(list_at(*it, "targetList"), scope, target, true);
    if (const auto where = it->find("whereClause"); where != it->end()) expression(*where, scope);
  }
  scope.visible = {target};
  returning(body, scope);
}

void Resolver::update(const Json& body, Scope* parent) {
  Scope scope;
  scope.parent = parent;
  with_clause(body, scope);
  const int target = target_relation(body, scope);
  from_clause(list_at(body, "fromClause"), scope);
  scope.visible.insert(scope.visible.begin(), target);
  if (const auto it = body.find("whereClause"); it != body.end()) expression(*it, scope);
  returning(body, scope);
  set_list(list_at(body, "targetList"), scope, target, false);
}

void Resolver::delete_(const Json& body, Scope* parent) {
  Scope scope;
  scope.parent = parent;
  with_clause(body, scope);
  const int target = target_relation(body, scope);
  from_clause(list_at(body, "usingClause"), scope);
  scope.visible.insert(scope.visible.begin(), target);
  if (const auto it = body.find("whereClause"); it != body.end()) expression(*it, scope);
  returning(body, scope);
}

void Resolver::merge(const Json& body, Scope* parent) {
  Scope scope;
  scope.parent = parent;
  with_clause(body, scope);
  const int target = target_relation(body, scope);
  const int source = from_item(node_at(body, "sourceRelation"), scope);
  scope.visible = {target, source};
  if (const auto it = body.find("joinCondition"); it != body.end()) expression(*it, scope);
  for (const auto& node : list_at(body, "mergeWhenClauses")) {
    const auto& clause = node_at(node, "MergeWhenClause");
    // WHEN NOT MATCHED sees only the source row.
    scope.visible = clause.value("matched", false) ? std::vector<int>{target, source}
                                                   : std::vector<int>{source};
    if (const auto it = clause.find("condition"); it != clause.end()) expression(*it, scope);
    const auto command = clause.value("commandType", "");
    if (command == "CMD_UPDATE") {
      set_list(list_at(clause, "targetList"), scope, target, false);
    } else if (command == "CMD_INSERT") {
      for (const auto& value : list_at(clause, "values")) expression(value, scope);
      insert_target(clause, scope, target, Json(), 0);
    }
  }
}

void Resolver::copy(const Json& body) {
  if (const auto query = body.find("query"); query != body.end()) {
    statement(*query, nullptr);
    return;
  }
  copy_columns(body);
}

Resolution resolve_statement(const Json& statement, const RewriteRequest& request,
                             const std::vector<Token>& tokens) {
  Resolver resolver(request, tokens);
  resolver.statement(statement, nullptr);
  std::set<int> wrapped = resolver.wrap_requests();
  if (wrapped.empty()) return resolver.take();
  // Some relation must be read through a derived table; wrapping it may reveal another.
  for (int pass = 0; pass < 3; ++pass) {
    Resolver again(request, tokens, wrapped);
    again.statement(statement, nullptr);
    const auto& more = again.wrap_requests();
    if (std::includes(wrapped.begin(), wrapped.end(), more.begin(), more.end()) || pass == 2)
      return again.take();
    wrapped.insert(more.begin(), more.end());
  }
  return resolver.take();
}

}  // namespace seedproxy::rewriter
