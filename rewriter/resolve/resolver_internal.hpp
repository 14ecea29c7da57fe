// The resolver's working state, shared by the files that re-enact PostgreSQL's parse analysis:
// statements (resolver.cpp), FROM clauses (from_clause.cpp), expressions and names
// (references.cpp), and writes to seeded attributes (writes.cpp).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rewriter/resolve/resolver.hpp"
#include "rewriter/resolve/scope.hpp"

namespace seedproxy::rewriter {

struct InsertRows;  // writes.cpp

// The items of a {"List": {"items": [...]}} node (VALUES rows, multi-assignment rows).
[[nodiscard]] const Json& list_items(const Json& node);

// The leftmost location in a raw expression, as PostgreSQL's exprLocation mostly reports; -1 when
// the subtree has none.
[[nodiscard]] int leftmost_location(const Json& node);

// The name PostgreSQL gives an unaliased expression as a column (FigureColname), and a function
// in FROM as its range entry (figure_colname.cpp).
class ColumnNames {
 public:
  // "?column?" when the expression has no name.
  [[nodiscard]] std::string of(const Json& node);
  // Nodes examined so far: the work naming did, which tests hold to the statement's size.
  [[nodiscard]] std::size_t steps() const noexcept { return steps_; }

 private:
  int figure(const Json& node, std::string& name);
  int figure_tagged(std::string_view kind, const Json& body, std::string& name);
  int sub_link(const Json& body, std::string& name);
  // figure() of a node named before: the resolver names a scalar subquery's columns when it
  // resolves it, and the subquery's name is its first column's, so each level is named once.
  int remembered(const Json& node, std::string& name);
  std::unordered_map<const Json*, std::pair<int, std::string>> figured_;
  std::size_t steps_ = 0;
  // Levels of figure() under way; past max_naming_depth an expression is left unnamed.
  static constexpr int max_naming_depth = 256;
  int depth_ = 0;
};

// How an expression uses a whole-row reference to a seeded table (whole_row.cpp).
enum class RowUse : std::uint8_t {
  shown,     // read field by field or output: a record that carries the seeds
  physical,  // as a value of the table's own type: the table's row
  neutral,   // grouped, sorted or counted only: either will do
};

// The use of the row in child `key` of a `kind` node whose own value is used as `use`.
[[nodiscard]] RowUse child_row_use(std::string_view kind, std::string_view key, const Json& body,
                                   RowUse use);

class Resolver {
 public:
  // `wrapped`: locations of relations to read through a derived table that exposes their
  // seeded attributes as real columns (the fallback when a reference cannot be spliced).
  Resolver(const RewriteRequest& request, const std::vector<Token>& tokens,
           std::set<int> wrapped = {})
      : request_(request), tokens_(tokens), wrapped_(std::move(wrapped)) {}

  void statement(const Json& node, Scope* parent);
  [[nodiscard]] Resolution take();
  // Relations this pass found it could not splice for; a second pass wraps them.
  [[nodiscard]] const std::set<int>& wrap_requests() const { return wrap_requests_; }

 private:
  // ---- errors: analysis errors win over rewrite-phase refusals, as in PostgreSQL ----
  [[nodiscard]] bool failed() const { return analysis_error_.has_value(); }
  void fail(std::string sqlstate, std::string message, std::string detail, int position = 0);
  void refuse(std::string sqlstate, std::string message, std::string detail);
  [[nodiscard]] int position_of(int byte_offset) const;
  // Guards the recursion over the tree: a statement nested deeper than this is refused rather
  // than risking the thread's stack.
  struct Depth {
    explicit Depth(Resolver& resolver);
    ~Depth() { --resolver_.depth_; }
    Depth(const Depth&) = delete;
    Depth& operator=(const Depth&) = delete;
    [[nodiscard]] bool too_deep() const { return resolver_.depth_ > max_depth; }
    Resolver& resolver_;
  };
  static constexpr int max_depth = 2000;

  // ---- statements (resolver.cpp) ----
  std::vector<std::string> select(const Json& body, Scope* parent, bool* known = nullptr);
  void insert(const Json& body, Scope* parent);
  void update(const Json& body, Scope* parent);
  void delete_(const Json& body, Scope* parent);
  void merge(const Json& body, Scope* parent);
  void copy(const Json& body);
  void rule(const Json& body, Scope* parent);
  void returning(const Json& body, Scope& scope);
  void table_form(const Json& body, Scope& scope);

  // ---- DDL that names a seed (ddl.cpp) ----
  enum class DdlOutcome : std::uint8_t { passed, skipped, refused };
  [[nodiscard]] const Relation* ddl_relation(const Json& range_var) const;
  void alter_table(const Json& body);
  DdlOutcome alter_command(const Json& cmd, const Relation& relation,
                           const std::vector<const VirtualAttribute*>& seeds);
  DdlOutcome seed_command(std::string_view subtype, bool missing_ok, const VirtualAttribute& seed,
                          const Relation& relation, bool using_clause);
  void input_command(std::string_view subtype, bool cascade, const std::string& name,
                     const Relation& relation, const std::vector<const VirtualAttribute*>& seeds);
  void rename(const Json& body);
  void skip_commands(const Json& body, const Relation& relation, const std::vector<bool>& skipped);
  [[nodiscard]] std::vector<std::pair<int, int>> command_extents(const Json& body,
                                                                 std::size_t count) const;

  // ---- FROM clauses (from_clause.cpp) ----
  void from_clause(const Json& list, Scope& scope);
  int from_item(const Json& node, Scope& scope);
  int relation_item(const Json& range_var, Scope& scope);
  int subselect_item(const Json& body, Scope& scope);
  int join_item(const Json& body, Scope& scope);
  int function_item(const Json& body, Scope& scope);
  int other_item(std::string_view kind, const Json& body, Scope& scope);
  Entry relation_entry(const Json& range_var, const Scope& scope);
  void apply_alias(const Json& range, Entry& entry);
  [[nodiscard]] std::optional<Edit> alias_columns_edit(const Json& range_var,
                                                       const Entry& entry) const;
  [[nodiscard]] bool alias_count_fits(const Json& range_var, const Entry& entry);
  void trim_alias_columns(const Json& range_var, const Entry& entry);
  void with_clause(const Json& body, Scope& scope);
  int target_relation(const Json& body, Scope& scope);
  [[nodiscard]] std::optional<RelationExtent> relation_extent_of(const Json& range_var) const;
  [[nodiscard]] std::optional<std::pair<int, int>> relation_span(const Json& range_var) const;
  void wrap(const Json& range_var, Entry& entry);
  void request_wrap(const Scope& scope, int entry);
  void request_wraps_under(const Scope& scope, int item);

  // ---- expressions and names (references.cpp) ----
  void expression(const Json& node, Scope& scope);
  bool target_list(const Json& list, Scope& scope, std::vector<std::string>* names);
  bool star(const ColumnRefView& view, int begin, int end, int through, Scope& scope,
            std::vector<std::string>* names, bool bare_star_ok);
  [[nodiscard]] std::optional<std::string> star_text(const Scope& scope,
                                                     const std::vector<int>& items,
                                                     bool keep_bare_star);
  bool column_ref(const ColumnRefView& view, Scope& scope);
  bool field_of_row(const Json& indirection, Scope& scope);
  // `text` replaces a reference ending at byte `end`; parenthesized when a subscript follows.
  [[nodiscard]] std::string operand(std::string text, int end) const;
  // ---- whole-row references (whole_row.cpp) ----
  bool whole_row_reference(const ColumnRefView& view, const Scope& level, int entry,
                           const Scope& at);
  bool whole_row(const ColumnRefView& view, const Scope& level, int entry, const Scope& at);
  bool physical_row(const ColumnRefView& view, const Scope& level, int entry, const Scope& at);
  [[nodiscard]] std::string null_guarded(const Scope& level, int entry, std::string value) const;
  // A select list's or VALUES' whole rows: shown, unless the output is stored in a typed column
  // (CREATE VIEW / TABLE AS, SELECT INTO, INSERT's source), which cannot be of type record.
  [[nodiscard]] RowUse output_use() const {
    return stored_output_ ? RowUse::physical : RowUse::shown;
  }
  // Sets how whole rows are used for the lifetime of the guard.
  struct UseRows {
    UseRows(Resolver& resolver, RowUse use) : resolver_(resolver), saved_(resolver.row_use_) {
      resolver_.row_use_ = use;
    }
    ~UseRows() { resolver_.row_use_ = saved_; }
    UseRows(const UseRows&) = delete;
    UseRows& operator=(const UseRows&) = delete;
    Resolver& resolver_;
    RowUse saved_;
  };
  // Marks the output of the statement resolved during its lifetime as stored (or not).
  struct StoredOutput {
    StoredOutput(Resolver& resolver, bool stored)
        : resolver_(resolver), saved_(resolver.stored_output_) {
      resolver_.stored_output_ = stored;
    }
    ~StoredOutput() { resolver_.stored_output_ = saved_; }
    StoredOutput(const StoredOutput&) = delete;
    StoredOutput& operator=(const StoredOutput&) = delete;
    Resolver& resolver_;
    bool saved_;
  };
  [[nodiscard]] std::optional<std::string> visible_name(const Scope& level, int entry, int hider,
                                                        const std::vector<ItemColumn>& join_columns,
                                                        const std::string& original) const;
  [[nodiscard]] std::optional<std::string> bind(const Scope& level, int entry, std::size_t index,
                                                const Scope& at, bool with_name);
  [[nodiscard]] std::optional<std::string> column_text(const Scope& scope, const ItemColumn& column,
                                                       bool with_name);
  [[nodiscard]] int target_end(int location) const;
  void sort_items(const Json& list, Scope& scope, const std::vector<std::string>& names);

  // ---- writes to seeded attributes (writes.cpp) ----
  void insert_target(const Json& body, const Scope& scope, int target_item, const Json& source,
                     std::size_t source_count);
  // INSERT INTO t (a, b, ...): the named seeded columns may only be given DEFAULT.
  void insert_named_columns(const Entry& target, const Json& cols, const InsertRows& rows);
  // INSERT INTO t VALUES/SELECT: values fill the columns in order, seeded ones included.
  void insert_all_columns(const Entry& target, const InsertRows& rows, const Json& source,
                          std::size_t source_count);
  // INSERT … VALUES where the table's shape is not upstream's order: names the columns.
  void insert_column_list(const Entry& target, const InsertRows& rows, std::size_t width);
  void set_list(const Json& list, Scope& scope, int target_item, bool on_conflict);
  void copy_columns(const Json& body);

  const RewriteRequest& request_;
  const std::vector<Token>& tokens_;
  Resolution out_;
  std::optional<SqlError> analysis_error_;
  std::optional<SqlError> rewrite_error_;
  int depth_ = 0;
  std::set<int> wrapped_;
  std::set<int> wrap_requests_;
  ColumnNames column_names_;
  std::vector<std::string> returning_names_;
  bool returning_known_ = false;
  RowUse row_use_ = RowUse::physical;
  bool stored_output_ = false;
  // The column reference that names an unaliased select-list item, and whether it was spliced.
  const Json* name_leaf_ = nullptr;
  bool name_leaf_spliced_ = false;
};

}  // namespace seedproxy::rewriter
