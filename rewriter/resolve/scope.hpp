// One query level as PostgreSQL's parse analysis sees it: range entries, the FROM items that
// join them, CTEs, and the lookups of qualified and unqualified names over them.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rewriter/catalog/seed_set.hpp"

namespace seedproxy::rewriter {

struct Column {
  std::string name;
  const VirtualAttribute* seed = nullptr;  // a live seeded attribute (virtual … materialized)
  bool physical = true;                    // the relation really has this column
  std::string original;                    // the catalog's name, before an alias renamed it
  int attnum = 0;  // a column of the relation's own row type: its attnum there; else 0

  // References to it must be spliced (virtual, or materializing).
  [[nodiscard]] bool rewritten() const noexcept { return seed && seed->resolved_by_proxy(); }
  // Its relation's `*` must be spelled out column by column: it replaces a physical column, or
  // it is materializing, when the engine may add its column upstream at any moment (a plain `*`
  // would then return it twice, and change a prepared statement's result type).
  [[nodiscard]] bool spelled_out() const noexcept {
    return rewritten() && (physical || seed->phase == Phase::materializing);
  }
};

// A range-table entry: a relation, a CTE reference, a subquery or a function.
struct Entry {
  std::string refname;  // alias, or the relation / function name
  std::string schema;   // relations only
  std::string relname;
  bool relation = false;
  bool aliased = false;
  bool columns_known = false;
  std::vector<Column> columns;
  // Relations: columns upstream has that clients no longer see (TableShape::hidden), in no
  // `columns`' place but counted by an alias list upstream.
  std::vector<Column> hidden;
  int item = -1;           // the leaf item holding it
  int wrap_location = -1;  // a relation in FROM that may be read through a derived table
  bool wrapped = false;    // read through a derived table: its seeds are real columns there
  // Relations: the physical columns come first in `columns`, in attnum order, so the relation's
  // own '*' lists them as `columns` does (TableShape::physical_first).
  bool physical_first = true;
};

// A FROM item: one entry (a leaf) or a join of two items.
struct Item {
  int entry = -1;  // >= 0 for a leaf
  int left = -1;
  int right = -1;
  int parent = -1;
  std::string alias;                 // a join alias hides the entries inside the join
  std::vector<std::string> renamed;  // the alias's column list: new names of the first columns
  std::string using_alias;           // JOIN … USING (…) AS name
  std::vector<std::string> merged;   // USING / NATURAL columns, in output order
  std::string join_type;             // JOIN_INNER, JOIN_LEFT, JOIN_RIGHT, JOIN_FULL
};

// One output column of an item: a column of an entry, or a merged join column.
struct ItemColumn {
  std::string name;
  int entry = -1;  // with `index`: the entry column; -1 for a merged column
  std::size_t index = 0;
  int join = -1;  // merged: the join item that merges it
};

struct Cte {
  std::string name;
  std::vector<std::string> columns;
  bool columns_known = false;
};

// What a qualifier names: an entry, or a join by its alias or USING alias.
struct Named {
  int entry = -1;
  int join = -1;
  bool using_alias = false;
};

struct Scope {
  Scope* parent = nullptr;
  std::vector<Entry> entries;
  std::vector<Item> items;
  std::vector<int> visible;     // items whose columns unqualified names see, in FROM order
  std::vector<int> named_only;  // items qualified names see, unqualified ones do not (OLD, NEW)
  std::vector<Cte> ctes;

  [[nodiscard]] int add_leaf(Entry entry);
  [[nodiscard]] int add_join(Item join);

  // Output columns of an item in PostgreSQL's order (merged first for joins).
  [[nodiscard]] std::vector<ItemColumn> columns_of(int item) const;
  // Columns of all visible items, in '*' order.
  [[nodiscard]] std::vector<ItemColumn> visible_columns() const;
  // Only the columns called `name`: of one item, or of all visible items (cheap: most lookups).
  void columns_named(int item, const std::string& name, std::vector<ItemColumn>& out) const;
  [[nodiscard]] std::vector<ItemColumn> visible_named(const std::string& name) const;

  // What `qualifier` (one name, or schema and relation) names among the visible items.
  [[nodiscard]] std::optional<Named> find_named(const std::vector<std::string>& qualifier) const;
  [[nodiscard]] bool name_visible(const std::string& name) const {
    return find_named({name}).has_value();
  }

  // The outermost join with an alias that hides entry `entry`, or -1 when it is visible by name.
  [[nodiscard]] int hiding_join(int entry) const;
  // Whether an outer join can NULL-extend this entry's rows (right of LEFT, left of RIGHT, FULL).
  [[nodiscard]] bool null_extended(int entry) const;

  [[nodiscard]] const Cte* find_cte(const std::string& name) const;

 private:
  void find_named_in(int item, bool hidden, const std::vector<std::string>& qualifier,
                     std::optional<Named>& found) const;
};

}  // namespace seedproxy::rewriter
