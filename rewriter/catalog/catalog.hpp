// Immutable snapshot of one database's relations and their physical columns, for name resolution.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace seedproxy::rewriter {

struct Relation {
  Relation() = default;
  Relation(std::string schema_name, std::string relation_name, std::vector<std::string> names,
           std::vector<int> numbers = {})
      : schema(std::move(schema_name)),
        name(std::move(relation_name)),
        columns(std::move(names)),
        attnums(std::move(numbers)) {}

  std::string schema;
  std::string name;
  std::vector<std::string> columns;  // physical, not dropped, in attnum order
  std::vector<int> attnums;          // each column's attnum; empty when they are 1, 2, 3, …
  // Each column's "seedproxy added it" mark (a materialized seed's column); empty when none has.
  std::vector<bool> marked;
  char kind = 'r';        // pg_class.relkind: r table, p partitioned, v view, …
  bool unlogged = false;  // pg_class.relpersistence is 'u'
  // pg_class.relnatts (dropped columns counted: the next ADD COLUMN gets natts + 1); -1 unknown.
  int natts = -1;
  // pg_class.relhassubclass: it has (or had) inheritance children or partitions, which DDL on it
  // changes too. True when unknown.
  bool may_have_children = true;

  // Whether seedproxy's materialization added columns[index] (it carries the mark).
  [[nodiscard]] bool added_by_seedproxy(std::size_t index) const noexcept {
    return index < marked.size() && marked[index];
  }
  // The attnum of columns[index]: dropped columns leave gaps, which seeds' places count.
  [[nodiscard]] int attnum(std::size_t index) const noexcept {
    return index < attnums.size() ? attnums[index] : static_cast<int>(index) + 1;
  }
};

class Catalog {
 public:
  Catalog() = default;
  Catalog(std::vector<Relation> relations, std::uint64_t version);

  [[nodiscard]] const Relation* find(std::string_view schema, std::string_view name) const;
  // The relation an unqualified name means under `search_path` (pg_catalog first, as PostgreSQL).
  [[nodiscard]] const Relation* resolve(std::span<const std::string> search_path,
                                        std::string_view name) const;
  [[nodiscard]] std::uint64_t version() const noexcept { return version_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  // A copy with every relation named one of `names` (sorted; in any schema) left out and the
  // `fresh` relations put in (replacing any of the same schema and name): the catalog after DDL
  // on those names, without reading the others again. Relations are shared, not copied, and so
  // is the map of the unchanged ones: the cost is that of the names and the fresh relations.
  [[nodiscard]] Catalog patched(std::span<const std::string> names, std::vector<Relation> fresh,
                                std::uint64_t version) const;
  // A copy with exactly the relation `schema`.`name` left out and `fresh` put in (its name may
  // differ: a rename). Relations are shared, not copied.
  [[nodiscard]] Catalog replaced(std::string_view schema, std::string_view name, Relation fresh,
                                 std::uint64_t version) const;

 private:
  // Hashes schema '\0' name keys, and looks them up from a string_view without a copy.
  struct KeyHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view key) const noexcept {
      return std::hash<std::string_view>{}(key);
    }
  };
  // The relations as loaded, shared by every catalog derived from them: a copy after DDL costs
  // its few changes, not a copy of the whole map.
  struct Base {
    std::unordered_map<std::string, std::shared_ptr<const Relation>, KeyHash, std::equal_to<>>
        by_key;
    std::unordered_map<std::string, std::vector<std::string>, KeyHash, std::equal_to<>>
        keys_by_name;  // relation name -> the keys of every schema's relation of that name
  };
  // What differs from base_ under `key`: the relation there now, or null where base_'s is gone.
  struct Change {
    std::string key;
    std::shared_ptr<const Relation> relation;
  };
  // Past this many changes they are folded into a new base.
  static constexpr std::size_t max_changes = 32;

  [[nodiscard]] const Relation* find_key(std::string_view key) const;
  [[nodiscard]] bool in_base(std::string_view key) const;
  void set(std::string key, std::shared_ptr<const Relation> relation);
  void settle();  // counts size_, folds the changes into a new base past max_changes

  std::shared_ptr<const Base> base_;
  std::vector<Change> changes_;  // sorted by key
  std::size_t size_ = 0;
  std::uint64_t version_ = 0;
};

}  // namespace seedproxy::rewriter
