// Whole-row references to a seeded table ("a", "a.*" in an expression). The table's composite
// type cannot carry a virtual attribute, so how a reference is written depends on how the
// expression around it uses the row (RowUse):
//   shown     read field by field or output (the select list, VALUES, row_to_json and the other
//             record-reading built-ins, IS NULL, (a).*): a record that carries the seeds, read
//             through a derived table, or built in place where there can be none;
//   physical  a value of the table's own type (a cast, an argument of any other function, an
//             operand, a column of a view or table being created): the table's row as written,
//             rebuilt from the columns only when the entry is read through a derived table;
//   neutral   grouped, sorted or counted only: whatever the entry gives.
// Without a catalog of functions an argument is taken as physical unless the function is one of
// the built-ins below that read any record's fields: so a user function taking the table's type
// gets the table's row, as it would before the seed existed.
#include <algorithm>
#include <array>

#include "common/identifiers.hpp"
#include "rewriter/resolve/resolver_internal.hpp"

namespace seedproxy::rewriter {
namespace {

// Built-ins (pg_catalog, or hstore's) whose arguments are read as records of named fields, or
// printed: a real column would show in their result.
constexpr std::array<std::string_view, 19> record_readers = {"row_to_json",
                                                             "to_json",
                                                             "to_jsonb",
                                                             "json_agg",
                                                             "jsonb_agg",
                                                             "json_object_agg",
                                                             "jsonb_object_agg",
                                                             "json_build_array",
                                                             "json_build_object",
                                                             "jsonb_build_array",
                                                             "jsonb_build_object",
                                                             "array_agg",
                                                             "format",
                                                             "concat",
                                                             "concat_ws",
                                                             "hstore",
                                                             "record_out",
                                                             "record_send",
                                                             "pg_column_size"};

// Types a row can be cast to as text: the cast prints every field.
constexpr std::array<std::string_view, 6> textual_types = {"text", "varchar", "bpchar",
                                                           "name", "json",    "jsonb"};

std::string last_name(const Json& names) {
  return names.empty() ? std::string() : string_at(node_at(names.back(), "String"), "sval");
}

RowUse argument_use(const Json& call) {
  const auto& names = list_at(call, "funcname");
  if (names.size() > 1 && string_at(node_at(names.front(), "String"), "sval") != "pg_catalog" &&
      last_name(names) != "hstore")
    return RowUse::physical;
  const auto name = last_name(names);
  if (name == "count") return RowUse::neutral;
  return std::find(record_readers.begin(), record_readers.end(), name) != record_readers.end()
             ? RowUse::shown
             : RowUse::physical;
}

}  // namespace

RowUse child_row_use(std::string_view kind, std::string_view key, const Json& body, RowUse use) {
  // Nodes whose value is (or holds) their children's: the use passes through.
  if (kind == "List" || kind == "RowExpr" || kind == "A_ArrayExpr" || kind == "CoalesceExpr" ||
      kind == "MinMaxExpr" || kind == "CollateClause" || kind == "SortBy" || kind == "GroupingSet")
    return use;
  if (kind == "CaseExpr") return key == "args" || key == "defresult" ? use : RowUse::physical;
  if (kind == "CaseWhen") return key == "result" ? use : RowUse::physical;
  if (kind == "NullTest" || kind == "A_Indirection") return RowUse::shown;
  if (kind == "TypeCast") {
    const auto type = last_name(list_at(node_at(body, "typeName"), "names"));
    return std::find(textual_types.begin(), textual_types.end(), type) != textual_types.end()
               ? RowUse::shown
               : RowUse::physical;
  }
  if (kind == "FuncCall") {
    if (key == "agg_order" || key == "over") return RowUse::neutral;
    return key == "args" ? argument_use(body) : RowUse::physical;
  }
  if (kind == "WindowDef") return RowUse::neutral;
  return RowUse::physical;
}

bool Resolver::whole_row_reference(const ColumnRefView& view, const Scope& level, int entry,
                                   const Scope& at) {
  const Entry& e = level.entries[static_cast<std::size_t>(entry)];
  // Shown, the row must carry the seeds, and its fields in the order the table shows them.
  const bool seeded = e.wrapped || !e.physical_first ||
                      std::any_of(e.columns.begin(), e.columns.end(),
                                  [](const Column& c) { return c.rewritten(); });
  if (!e.relation || !seeded) return false;
  // An alias list renames the record's fields, where the table's type keeps its own names.
  const bool renamed = std::any_of(e.columns.begin(), e.columns.end(), [](const Column& c) {
    return !c.original.empty() && c.original != c.name;
  });
  switch (row_use_) {
    case RowUse::neutral:
      return false;
    case RowUse::physical:
      if (!e.wrapped && std::none_of(e.columns.begin(), e.columns.end(),
                                     [](const Column& c) { return c.spelled_out(); }))
        return false;  // the table's own row, as written
      return physical_row(view, level, entry, at);
    case RowUse::shown:
      if (!renamed && (e.wrapped || e.wrap_location >= 0)) {
        request_wrap(level, entry);  // the derived table's record carries the seeds
        return false;
      }
      return whole_row(view, level, entry, at);
  }
  return false;
}

// "CASE WHEN alias IS NOT DISTINCT FROM NULL THEN NULL ELSE value END" on the NULL-extended side
// of an outer join, where the whole row is NULL rather than a row of NULLs.
std::string Resolver::null_guarded(const Scope& level, int entry, std::string value) const {
  if (!level.null_extended(entry)) return value;
  const auto& e = level.entries[static_cast<std::size_t>(entry)];
  return "CASE WHEN " + pg::quote_identifier(e.refname) +
         " IS NOT DISTINCT FROM NULL THEN NULL ELSE " + value + " END";
}

// The table's own row, built from its columns (a materializing seed's value completed):
// "(ROW("a"."id", …)::"public"."account")".
bool Resolver::physical_row(const ColumnRefView& view, const Scope& level, int entry,
                            const Scope& at) {
  const Entry& e = level.entries[static_cast<std::size_t>(entry)];
  const auto end = end_after_tokens(tokens_, view.location, view.star ? 3 : 1);
  if (!end) return false;
  // The row type's fields are the relation's columns in attnum order, wherever '*' shows them.
  std::vector<std::size_t> own;
  for (std::size_t i = 0; i < e.columns.size(); ++i)
    if (e.columns[i].attnum > 0) own.push_back(i);
  std::sort(own.begin(), own.end(), [&](std::size_t a, std::size_t b) {
    return e.columns[a].attnum < e.columns[b].attnum;
  });
  std::string fields;
  for (const std::size_t i : own) {
    const Column& c = e.columns[i];
    auto piece = c.rewritten() ? bind(level, entry, i, at, false)
                               : std::optional<std::string>(pg::quote_identifier(e.refname) + "." +
                                                            pg::quote_identifier(c.name));
    if (!piece) return false;
    fields += (fields.empty() ? "" : ", ") + *piece;
  }
  const std::string row = "ROW(" + fields + ")::" + pg::quote_identifier(e.schema) + "." +
                          pg::quote_identifier(e.relname);
  std::string text = "(";
  text += null_guarded(level, entry, row);
  text += ')';
  out_.edits.push_back({view.location, *end, std::move(text)});
  return true;
}

// A record of the entry's columns and seeds under the table's own field names, built in place:
// "(SELECT "a_row" FROM (SELECT "a".*, <attributes>) "a_row")". For the target of INSERT /
// UPDATE / DELETE and table samples, which cannot be derived tables, and for an entry whose
// alias list renames columns (the record must keep the type's names, as row_to_json shows).
bool Resolver::whole_row(const ColumnRefView& view, const Scope& level, int entry,
                         const Scope& at) {
  const Entry& e = level.entries[static_cast<std::size_t>(entry)];
  const auto end = end_after_tokens(tokens_, view.location, view.star ? 3 : 1);
  if (!end) return false;
  const bool spelled =
      !e.physical_first || std::any_of(e.columns.begin(), e.columns.end(), [](const Column& c) {
        return c.spelled_out() || (!c.original.empty() && c.original != c.name);
      });
  std::string columns;
  for (std::size_t i = 0; i < e.columns.size(); ++i) {
    const Column& c = e.columns[i];
    const std::string& field = c.original.empty() ? c.name : c.original;
    std::optional<std::string> piece;
    if (c.rewritten())
      piece = bind(level, entry, i, at, false);
    else if (spelled)
      piece = pg::quote_identifier(e.refname) + "." + pg::quote_identifier(c.name);
    else
      continue;
    if (!piece) return false;
    columns += ", " + *piece + " AS " + pg::quote_identifier(field);
  }
  // The row's own alias must not be a column name, or it would read that column.
  std::string row_name = e.refname + "_row";
  while (std::any_of(e.columns.begin(), e.columns.end(),
                     [&](const Column& c) { return c.name == row_name || c.original == row_name; }))
    row_name += "_";
  const std::string row = pg::quote_identifier(row_name);
  const std::string head =
      spelled ? columns.substr(2) : pg::quote_identifier(e.refname) + ".*" + columns;
  const std::string record = "(SELECT " + row + " FROM (SELECT " + head + ") " + row + ")";
  out_.edits.push_back({view.location, *end, null_guarded(level, entry, record)});
  return true;
}

}  // namespace seedproxy::rewriter
