// What an ALTER TABLE changes in the resolver's catalog, read from its parse tree precisely
// enough to apply it without reading the catalog again: the columns it adds, drops or renames,
// or the relation's new name. The session applies it to its own view of the catalog once the
// statement has committed (seeds/registry/predicted_snapshot.hpp); the targeted refresh confirms.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "rewriter/parse/json_tree.hpp"

namespace seedproxy::rewriter {

struct ColumnChange {
  enum class Kind { add, drop, rename };
  Kind kind = Kind::add;
  std::string column;       // as PostgreSQL folded it
  std::string new_name;     // rename only
  bool missing_ok = false;  // ADD COLUMN IF NOT EXISTS, DROP COLUMN IF EXISTS
  bool operator==(const ColumnChange&) const = default;
};

struct CatalogPrediction {
  std::string schema;       // empty: the name is unqualified (resolved through search_path)
  std::string relation;     // as PostgreSQL folded it
  bool missing_ok = false;  // ALTER TABLE IF EXISTS
  std::vector<ColumnChange> columns;  // in order; empty for a rename of the relation
  std::string new_name;               // ALTER TABLE … RENAME TO; empty otherwise
  bool operator==(const CatalogPrediction&) const = default;
};

// The prediction for one statement (the "stmt" node of a RawStmt): only ALTER TABLE whose every
// command is ADD COLUMN or DROP COLUMN (without CASCADE), ALTER TABLE … RENAME COLUMN and ALTER
// TABLE … RENAME TO; nullopt for anything else.
[[nodiscard]] std::optional<CatalogPrediction> catalog_prediction(const Json& statement);

}  // namespace seedproxy::rewriter
