// Writes to seeded attributes, refused exactly as PostgreSQL refuses writes to a generated
// column; DEFAULT for them accepted (and cut when the column does not exist upstream); COPY
// column lists kept to the columns PostgreSQL itself would copy.
#include <algorithm>

#include "common/identifiers.hpp"
#include "common/sqlstate.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {
namespace {

constexpr std::size_t none = static_cast<std::size_t>(-1);

struct Extent {
  int begin = -1;
  int end = -1;
};

bool is_default(const Json& node) { return node.is_object() && node.contains("SetToDefault"); }

// Index of the seeded column named `name` in `entry`, or `none`.
std::size_t seeded_index(const Entry& entry, const std::string& name) {
  for (std::size_t i = 0; i < entry.columns.size(); ++i)
    if (entry.columns[i].name == name && entry.columns[i].seed) return i;
  return none;
}

std::string not_default_message(const std::string& column) {
  return "cannot insert a non-DEFAULT value into column \"" + column + "\"";
}

std::string generated_detail(const std::string& column) {
  return "Column \"" + column + "\" is a generated column.";
}

}  // namespace

// Cuts runs of list items (with the commas that separate them) out of the client's text.
// `items` holds every item's extent (only removed ones need a begin/end); not all are removed.
static void remove_items(const std::vector<Token>& tokens, const std::vector<Extent>& items,
                         const std::vector<bool>& removed, std::vector<Edit>& edits) {
  auto index_at = [&](int start) { return token_index(tokens, start); };
  auto index_ending = [&](int end) -> std::optional<std::size_t> {
    for (std::size_t i = 0; i < tokens.size(); ++i)
      if (tokens[i].end == end) return i;
    return std::nullopt;
  };
  for (std::size_t a = 0; a < items.size();) {
    if (!removed[a]) {
      ++a;
      continue;
    }
    std::size_t b = a;
    while (b + 1 < items.size() && removed[b + 1]) ++b;
    if (a > 0) {
      const auto first = index_at(items[a].begin);
      if (first && *first > 0 && tokens[*first - 1].single == ',')
        edits.push_back({tokens[*first - 1].start, items[b].end, ""});
    } else {
      const auto last = index_ending(items[b].end);
      if (last && *last + 2 < tokens.size() && tokens[*last + 1].single == ',')
        edits.push_back({items[a].begin, tokens[*last + 2].start, ""});
    }
    a = b + 1;
  }
}

// The VALUES rows an INSERT writes (each the list of its expressions); empty for INSERT ...
// SELECT and DEFAULT VALUES.
struct InsertRows {
  std::vector<const Json*> rows;

  // Whether every row has DEFAULT at `k` (false without rows).
  [[nodiscard]] bool all_default(std::size_t k) const {
    return !rows.empty() && std::all_of(rows.begin(), rows.end(), [&](const Json* row) {
      return k < row->size() && is_default((*row)[k]);
    });
  }
  // Cuts the values at the `removed` positions out of every row.
  void cut(const std::vector<Token>& tokens, const std::vector<bool>& removed,
           std::vector<Edit>& edits) const {
    for (const Json* row : rows) {
      std::vector<Extent> extents;
      for (const auto& value : *row) {
        const int at = leftmost_location(value);
        const auto token = token_index(tokens, at);
        extents.push_back({at, token ? tokens[*token].end : -1});
      }
      remove_items(tokens, extents, removed, edits);
    }
  }
};

void Resolver::insert_target(const Json& body, const Scope& scope, int target_item,
                             const Json& source, std::size_t source_count) {
  const Entry& target = scope.entries[static_cast<std::size_t>(
      scope.items[static_cast<std::size_t>(target_item)].entry)];
  const bool has_seeds = std::any_of(target.columns.begin(), target.columns.end(),
                                     [](const Column& c) { return c.seed; });
  if (!target.relation || !has_seeds) return;
  const auto& cols = body.contains("cols") ? list_at(body, "cols") : list_at(body, "targetList");
  InsertRows rows;
  if (source.is_object() && source.value("op", "SETOP_NONE") == "SETOP_NONE")
    for (const auto& row : list_at(source, "valuesLists")) rows.rows.push_back(&list_items(row));
  if (body.contains("values")) rows.rows.push_back(&list_at(body, "values"));
  if (!cols.empty())
    insert_named_columns(target, cols, rows);
  else
    insert_all_columns(target, rows, source, source_count);
}

void Resolver::insert_named_columns(const Entry& target, const Json& cols, const InsertRows& rows) {
  for (const Json* row : rows.rows)
    if (row->size() != cols.size()) return;  // PostgreSQL reports that itself, identically
  std::size_t refused = none;
  std::vector<bool> removed(cols.size(), false);
  std::vector<Extent> names;
  for (std::size_t k = 0; k < cols.size(); ++k) {
    const auto& target_col = node_at(cols[k], "ResTarget");
    const int at = target_col.value("location", -1);
    const auto end = reference_end(tokens_, at, 1);
    names.push_back({at, end ? *end : -1});
    const std::size_t i = seeded_index(target, string_at(target_col, "name"));
    if (i == none) continue;
    if (!rows.all_default(k))
      refused = std::min(refused, i);
    else if (!target.columns[i].physical)
      removed[k] = true;
  }
  if (refused != none)
    return refuse(sqlstate::generated_always, not_default_message(target.columns[refused].name),
                  generated_detail(target.columns[refused].name));
  if (std::find(removed.begin(), removed.end(), true) == removed.end()) return;
  if (std::all_of(removed.begin(), removed.end(), [](bool r) { return r; })) {
    // Only DEFAULTs for attributes upstream lacks: insert DEFAULT into a real column instead.
    const auto first = std::find_if(target.columns.begin(), target.columns.end(),
                                    [](const Column& c) { return c.physical && !c.seed; });
    if (first == target.columns.end() || names.front().end < 0) return;
    out_.edits.push_back(
        {names.front().begin, names.back().end, pg::quote_identifier(first->name)});
    for (const Json* row : rows.rows) {
      const int from = leftmost_location(row->front());
      const auto last = token_index(tokens_, leftmost_location(row->back()));
      if (from >= 0 && last) out_.edits.push_back({from, tokens_[*last].end, "DEFAULT"});
    }
    return;
  }
  remove_items(tokens_, names, removed, out_.edits);
  rows.cut(tokens_, removed, out_.edits);
}

void Resolver::insert_all_columns(const Entry& target, const InsertRows& rows, const Json& source,
                                  std::size_t source_count) {
  std::size_t physical = 0;
  while (physical < target.columns.size() && target.columns[physical].physical) ++physical;
  const std::size_t total = target.columns.size();
  std::size_t first_seeded = 0;
  while (first_seeded < total && !target.columns[first_seeded].seed) ++first_seeded;
  if (!rows.rows.empty()) {
    if (std::all_of(rows.rows.begin(), rows.rows.end(),
                    [&](const Json* r) { return r->size() <= first_seeded; }))
      return;
    const std::size_t width = rows.rows[0]->size();
    for (const Json* row : rows.rows) {
      if (row->size() != width)
        return fail(sqlstate::syntax_error, "VALUES lists must all be the same length", {},
                    position_of(leftmost_location(*row)));
      if (width > total)
        return fail(sqlstate::syntax_error, "INSERT has more expressions than target columns", {},
                    position_of(leftmost_location((*row)[total])));
    }
    for (std::size_t k = first_seeded; k < width; ++k)
      if (target.columns[k].seed && !rows.all_default(k))
        return refuse(sqlstate::generated_always, not_default_message(target.columns[k].name),
                      generated_detail(target.columns[k].name));
    if (!target.physical_first) return insert_column_list(target, rows, width);
    if (width <= physical) return;
    std::vector<bool> removed(width, false);
    for (std::size_t k = physical; k < width; ++k) removed[k] = true;
    if (physical > 0) rows.cut(tokens_, removed, out_.edits);
    return;
  }
  if (source_count <= first_seeded) return;
  if (source_count > total) {
    // The first expression beyond the table's columns, counting each '*' as what it expands to.
    int position = 0;
    const auto& targets = list_at(source, "targetList");
    if (targets.size() == source_count)
      position = position_of(leftmost_location(node_at(targets[total], "ResTarget")));
    return fail(sqlstate::syntax_error, "INSERT has more expressions than target columns", {},
                position);
  }
  refuse(sqlstate::generated_always, not_default_message(target.columns[first_seeded].name),
         generated_detail(target.columns[first_seeded].name));
}

// VALUES fill the columns in the order the table shows them, which here is not upstream's: the
// columns are named, in that order, before VALUES (or OVERRIDING … VALUE), without the seeds
// upstream lacks, whose DEFAULTs are cut.
void Resolver::insert_column_list(const Entry& target, const InsertRows& rows, std::size_t width) {
  auto at = token_index(tokens_, leftmost_location(rows.rows.front()->front()));
  while (at && *at > 0 && !token_is(request_.sql, tokens_[*at], "values")) --*at;
  if (!at || !token_is(request_.sql, tokens_[*at], "values")) return;
  if (*at >= 3 && token_is(request_.sql, tokens_[*at - 1], "value") &&
      token_is(request_.sql, tokens_[*at - 3], "overriding"))
    *at -= 3;
  std::string list;
  std::vector<bool> removed(width, false);
  for (std::size_t k = 0; k < width; ++k) {
    if (!target.columns[k].physical) {
      removed[k] = true;
      continue;
    }
    list += (list.empty() ? "(" : ", ") + pg::quote_identifier(target.columns[k].name);
  }
  if (list.empty()) return;
  const int before = tokens_[*at].start;
  out_.edits.push_back({before, before, list + ") "});
  rows.cut(tokens_, removed, out_.edits);
}

void Resolver::set_list(const Json& list, Scope& scope, int target_item, bool on_conflict) {
  (void)on_conflict;
  const Entry& target = scope.entries[static_cast<std::size_t>(
      scope.items[static_cast<std::size_t>(target_item)].entry)];
  std::size_t refused = none;
  std::vector<Extent> extents;
  std::vector<bool> removed;
  // Multiple-column assignments "(a, b) = (1, DEFAULT)", by the location of their row.
  struct Group {
    const Json* row = nullptr;
    std::vector<Extent> names, values;
    std::vector<bool> removed;
  };
  std::vector<Group> groups;
  for (const auto& item : list) {
    if (failed()) return;
    const auto& set = node_at(item, "ResTarget");
    const auto& value = node_at(set, "val");
    const auto& multi = node_at(value, "MultiAssignRef");
    if (multi.is_null())
      expression(value, scope);
    else if (multi.value("colno", 0) == 1)
      expression(node_at(multi, "source"), scope);  // shared by the group's columns
    const std::size_t i = seeded_index(target, string_at(set, "name"));
    const int begin = set.value("location", -1);
    extents.push_back({begin, -1});
    removed.push_back(false);
    if (!multi.is_null()) {
      const auto& row = node_at(node_at(multi, "source"), "RowExpr");
      const auto& args = list_at(row, "args");
      const auto colno = static_cast<std::size_t>(multi.value("colno", 0));
      if (colno == 1 || groups.empty()) groups.push_back({&row, {}, {}, {}});
      Group& group = groups.back();
      const auto name_end = reference_end(tokens_, begin, 1);
      group.names.push_back({begin, name_end ? *name_end : -1});
      const int value_at =
          colno >= 1 && colno <= args.size() ? leftmost_location(args[colno - 1]) : -1;
      const auto value_token = token_index(tokens_, value_at);
      group.values.push_back({value_at, value_token ? tokens_[*value_token].end : -1});
      group.removed.push_back(false);
      if (i == none) continue;
      if (colno == 0 || colno > args.size() || !is_default(args[colno - 1]))
        refused = std::min(refused, i);
      else if (!target.columns[i].physical)
        group.removed.back() = true;
      continue;
    }
    if (i == none) continue;
    if (!is_default(value)) {
      refused = std::min(refused, i);
    } else if (!target.columns[i].physical) {
      const auto token = token_index(tokens_, leftmost_location(value));
      if (!token) continue;
      extents.back().end = tokens_[*token].end;
      removed.back() = true;
    }
  }
  if (refused != none)
    return refuse(sqlstate::generated_always,
                  "column \"" + target.columns[refused].name + "\" can only be updated to DEFAULT",
                  generated_detail(target.columns[refused].name));
  for (const auto& group : groups) {
    const auto kept = std::count(group.removed.begin(), group.removed.end(), false);
    if (kept == static_cast<std::ptrdiff_t>(group.removed.size()) || kept == 0) continue;
    remove_items(tokens_, group.names, group.removed, out_.edits);
    remove_items(tokens_, group.values, group.removed, out_.edits);
    // One column left: "(a) = (1)" must be written "(a) = ROW(1)".
    if (kept == 1 && group.row->value("row_format", "") != "COERCE_EXPLICIT_CALL") {
      const int at = group.row->value("location", -1);
      if (at >= 0) out_.edits.push_back({at, at, "ROW"});
    }
  }
  if (std::find(removed.begin(), removed.end(), true) == removed.end()) return;
  if (std::all_of(removed.begin(), removed.end(), [](bool r) { return r; })) {
    // Nothing left to set: assign the first physical column to itself, so the rows are still
    // updated (and their triggers fire) as PostgreSQL would update them.
    const auto first = std::find_if(target.columns.begin(), target.columns.end(),
                                    [](const Column& c) { return c.physical && !c.seed; });
    if (first == target.columns.end()) return;
    out_.edits.push_back({extents.front().begin, extents.back().end,
                          pg::quote_identifier(first->name) + " = " +
                              pg::quote_identifier(target.refname) + "." +
                              pg::quote_identifier(first->name)});
    return;
  }
  remove_items(tokens_, extents, removed, out_.edits);
}

void Resolver::copy_columns(const Json& body) {
  const auto& relation = node_at(body, "relation");
  Scope none_scope;
  const Entry entry = relation_entry(relation, none_scope);
  if (!entry.relation) return;
  const auto& attlist = list_at(body, "attlist");
  for (const auto& item : attlist) {
    const auto name = string_at(node_at(item, "String"), "sval");
    if (seeded_index(entry, name) != none)
      return fail(sqlstate::invalid_column_reference,
                  "column \"" + name + "\" is a generated column",
                  "Generated columns cannot be used in COPY.");
  }
  if (!attlist.empty()) return;
  // Without a list PostgreSQL copies no generated column; spell out the others when a seeded
  // attribute already exists upstream, or may at any moment (materializing).
  const bool upstream =
      std::any_of(entry.columns.begin(), entry.columns.end(), [](const Column& c) {
        return c.seed && (c.physical || c.seed->phase == Phase::materializing);
      });
  if (!upstream) return;
  std::string list;
  for (const auto& column : entry.columns)
    if (column.physical && !column.seed)
      list += (list.empty() ? " (" : ", ") + pg::quote_identifier(column.name);
  const std::size_t names = string_at(relation, "schemaname").empty() ? 1 : 2;
  const auto end = reference_end(tokens_, relation.value("location", -1), names);
  if (end && !list.empty()) out_.edits.push_back({*end, *end, list + ")"});
}

}  // namespace seedproxy::rewriter
