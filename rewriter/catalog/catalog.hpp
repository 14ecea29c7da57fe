// Immutable snapshot of one database's relations and their physical columns, for name resolution.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace seedproxy::rewriter {

struct Relation {
  std::string schema;
  std::string name;
  std::vector<std::string> columns;  // physical, not dropped, in attnum order
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
  [[nodiscard]] std::size_t size() const noexcept { return relations_.size(); }

  // A copy with every relation named one of `names` (sorted; in any schema) left out and the
  // `fresh` relations put in (replacing any of the same schema and name): the catalog after DDL
  // on those names, without reading the others again. Relations are shared, not copied.
  [[nodiscard]] Catalog patched(std::span<const std::string> names, std::vector<Relation> fresh,
                                std::uint64_t version) const;

 private:
  // key: schema '\0' name. Shared so that a patched copy costs a pointer per relation.
  std::unordered_map<std::string, std::shared_ptr<const Relation>> relations_;
  std::uint64_t version_ = 0;
};

}  // namespace seedproxy::rewriter
