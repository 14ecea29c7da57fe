// What a statement can change in the catalog the resolver reads (relation names and their
// columns), read from PostgreSQL's parse tree: nothing, some named relations, or more than a
// parse can bound. The session asks for a targeted catalog refresh with it after DDL.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/statements/catalog_prediction.hpp"

namespace seedproxy::rewriter {

struct CatalogEffect {
  // The change cannot be bounded by names (CASCADE, a schema dropped, an extension, DO): the
  // whole catalog must be read again.
  bool everything = false;
  // Unqualified relation names (as PostgreSQL folded them) whose entries may have appeared,
  // disappeared or changed columns, in any schema, inheritance descendants included. Sorted,
  // without duplicates.
  std::vector<std::string> names;
  // Set when the effect is that of exactly one statement whose change can be applied to the
  // catalog without reading it (catalog_prediction.hpp); merging two effects drops it.
  std::optional<CatalogPrediction> prediction;

  [[nodiscard]] bool empty() const noexcept { return !everything && names.empty(); }
  void merge(const CatalogEffect& other);
  void add_name(std::string name);
  // What is to be read again; the prediction is a shortcut to the same catalog.
  bool operator==(const CatalogEffect& other) const {
    return everything == other.everything && names == other.names;
  }
};

// The cheap gate, one pass over the text: false when no statement of `sql` begins with a word
// that starts a catalog-changing statement (CREATE, ALTER, DROP, IMPORT, DO, CALL, EXPLAIN, or a
// SELECT / WITH holding INTO). Comments and parentheses before the first word are skipped.
[[nodiscard]] bool might_change_catalog(std::string_view sql) noexcept;

// The effect of every statement of `sql` together. Text PostgreSQL's parser refuses changes
// nothing (the server runs the same grammar and refuses it too).
[[nodiscard]] CatalogEffect catalog_effect(std::string_view sql);

// Whether a CommandComplete tag is that of a statement that may change the catalog (used when
// the statement's text was not seen: it was too large to read, or prepared long before).
[[nodiscard]] bool catalog_command_tag(std::string_view tag) noexcept;

}  // namespace seedproxy::rewriter
