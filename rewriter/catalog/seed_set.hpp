// The seeds of one database compiled against its catalog: each virtual attribute with its
// expression cut into a template that can be bound to any alias of the entity.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rewriter/catalog/catalog.hpp"

namespace seedproxy::rewriter {

enum class Phase : std::uint8_t { declared, virtual_, materializing, materialized, rolled_back };
inline constexpr std::array<Phase, 5> all_phases{Phase::declared, Phase::virtual_,
                                                 Phase::materializing, Phase::materialized,
                                                 Phase::rolled_back};

// The phase's name where text is read or shown (the registry's "phase" column, SHOW SEEDS,
// metrics labels, /status.json); phase_from_string() reads it back, nullopt for other text.
[[nodiscard]] std::string_view to_string(Phase phase) noexcept;
[[nodiscard]] std::optional<Phase> phase_from_string(std::string_view text) noexcept;

// Where a seed sits among its table's columns: where ADD COLUMN would have put it when it was
// declared, after the columns the table had then (attnums up to `after_attnum`, dropped ones
// included) and the seeds declared before it (lower `order`). nullopt `after_attnum`: declared
// before the registry kept places (version 4); then it sits at its own column's attnum once it has
// one, after every column before that.
struct SeedPlace {
  std::optional<int> after_attnum;
  std::int64_t order =
      0;  // the registry's declaration sequence; the configuration's order within one
};

struct SeedDefinition {
  SeedDefinition() = default;
  SeedDefinition(std::string schema_name, std::string table_name, std::string attribute_name,
                 std::string type_text, std::string expression_text,
                 Phase seed_phase = Phase::virtual_, SeedPlace seed_place = {})
      : schema(std::move(schema_name)),
        table(std::move(table_name)),
        attribute(std::move(attribute_name)),
        type(std::move(type_text)),
        expression(std::move(expression_text)),
        phase(seed_phase),
        place(seed_place) {}

  std::string schema;
  std::string table;
  std::string attribute;
  std::string type;
  std::string expression;
  Phase phase = Phase::virtual_;
  SeedPlace place;
};

class ExpressionTemplate {
 public:
  // Cuts the references to `entity`'s columns out of `expression`. Returns an error sentence
  // (empty on success).
  [[nodiscard]] std::string compile(std::string_view expression, const Relation& entity,
                                    const Catalog& catalog);
  // The expression with every entity column written as "alias"."column". Range variables of
  // its own subqueries that are spelled like `alias` are renamed, so they never capture it.
  [[nodiscard]] std::string bind(std::string_view alias) const;
  // The same, where the reference's range entry renamed some columns (FROM t AS a(x, y)):
  // `renamed` maps catalog names to the names visible through `alias`.
  [[nodiscard]] std::string bind(
      std::string_view alias, std::span<const std::pair<std::string, std::string>> renamed) const;
  // The entity columns the expression reads, each once.
  [[nodiscard]] std::vector<std::string> columns() const;
  // True when the expression reads other relations (scalar subqueries).
  [[nodiscard]] bool cross_table() const noexcept { return cross_table_; }
  // True when the expression is NULL whenever all the entity's columns are NULL (column
  // references combined by strict arithmetic and comparison only), so it needs no guard on the
  // NULL-extended side of an outer join.
  [[nodiscard]] bool null_propagating() const noexcept { return null_propagating_; }

 private:
  enum class PieceKind : std::uint8_t {
    literal,     // SQL text as written (or a relation name made schema-qualified)
    column,      // an entity column: bound to the alias
    local,       // a range variable of the expression's own subqueries (alias or qualifier)
    local_slot,  // after an unaliased relation of a subquery: room for an alias when renamed
  };
  struct Piece {
    std::string text;  // literal SQL, the column name, or the local range variable's name
    PieceKind kind = PieceKind::literal;
    std::string written;  // local: the range variable as the expression spells it there
  };
  std::vector<Piece> pieces_;
  std::vector<std::string> locals_;  // range variable names of the expression's subqueries
  bool cross_table_ = false;
  bool null_propagating_ = false;
};

struct VirtualAttribute {
  std::string schema;
  std::string table;
  std::string name;
  std::string type;
  Phase phase = Phase::virtual_;
  ExpressionTemplate expression;
  SeedPlace place;

  // Whether the resolver rewrites references to it (virtual or materializing).
  [[nodiscard]] bool resolved_by_proxy() const noexcept {
    return phase == Phase::virtual_ || phase == Phase::materializing;
  }
  // Whether clients see it as a generated column (any phase but declared and rolled back).
  [[nodiscard]] bool live() const noexcept {
    return resolved_by_proxy() || phase == Phase::materialized;
  }
};

class SeedSet {
 public:
  SeedSet() = default;

  // Compiles each definition; definitions that fail are skipped and described in `errors`
  // ("public.account.risk_score: <reason>").
  [[nodiscard]] static SeedSet compile(const std::vector<SeedDefinition>& definitions,
                                       const Catalog& catalog, std::uint64_t version,
                                       std::vector<std::string>& errors);

  [[nodiscard]] const VirtualAttribute* find(std::string_view schema, std::string_view table,
                                             std::string_view attribute) const;
  // Attributes the proxy resolves for this relation, in declaration order.
  [[nodiscard]] std::vector<const VirtualAttribute*> resolved_for(std::string_view schema,
                                                                  std::string_view table) const;
  // Attributes that behave as generated columns of this relation (virtual, materializing or
  // materialized): read through the proxy or upstream, never writable. Declaration order.
  [[nodiscard]] std::vector<const VirtualAttribute*> live_for(std::string_view schema,
                                                              std::string_view table) const;
  // The pre-filter: false means `sql` cannot mention any live attribute or its table, nor a
  // table that still has the column of a rolled-back seed.
  [[nodiscard]] bool might_apply(std::string_view sql) const noexcept;
  // Nothing to rewrite: no live attribute, and no table whose '*' must leave out a rolled-back
  // seed's column.
  [[nodiscard]] bool empty() const noexcept { return attributes_.empty() && filter_words_.empty(); }
  [[nodiscard]] std::uint64_t version() const noexcept { return version_; }
  [[nodiscard]] const std::vector<VirtualAttribute>& attributes() const noexcept {
    return attributes_;
  }

 private:
  std::vector<VirtualAttribute> attributes_;
  std::vector<std::string> filter_words_;  // lower-case attribute and table names
  // Indices into filter_words_ by the word's first byte, in both cases, so the pre-filter is one
  // pass over the statement whatever the number of seeds.
  std::array<std::vector<std::uint32_t>, 256> words_by_first_byte_;
  std::uint64_t version_ = 0;
};

}  // namespace seedproxy::rewriter
