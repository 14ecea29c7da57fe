// Relation lookup by qualified name and by search_path.
#include "rewriter/catalog/catalog.hpp"

#include <algorithm>

namespace seedproxy::rewriter {
namespace {

std::string key_of(std::string_view schema, std::string_view name) {
  std::string key;
  key.reserve(schema.size() + name.size() + 1);
  key.append(schema).push_back('\0');
  key.append(name);
  return key;
}

}  // namespace

Catalog::Catalog(std::vector<Relation> relations, std::uint64_t version) : version_(version) {
  for (auto& relation : relations) {
    auto key = key_of(relation.schema, relation.name);
    relations_.emplace(std::move(key), std::make_shared<const Relation>(std::move(relation)));
  }
}

Catalog Catalog::patched(std::span<const std::string> names, std::vector<Relation> fresh,
                         std::uint64_t version) const {
  Catalog out;
  out.version_ = version;
  out.relations_.reserve(relations_.size() + fresh.size());
  for (const auto& [key, relation] : relations_)
    if (!std::binary_search(names.begin(), names.end(), relation->name))
      out.relations_.emplace(key, relation);
  for (auto& relation : fresh) {
    auto key = key_of(relation.schema, relation.name);
    out.relations_.insert_or_assign(std::move(key),
                                    std::make_shared<const Relation>(std::move(relation)));
  }
  return out;
}

Catalog Catalog::replaced(std::string_view schema, std::string_view name, Relation fresh,
                          std::uint64_t version) const {
  Catalog out;
  out.version_ = version;
  out.relations_ = relations_;
  out.relations_.erase(key_of(schema, name));
  auto key = key_of(fresh.schema, fresh.name);
  out.relations_.insert_or_assign(std::move(key),
                                  std::make_shared<const Relation>(std::move(fresh)));
  return out;
}

const Relation* Catalog::find(std::string_view schema, std::string_view name) const {
  const auto it = relations_.find(key_of(schema, name));
  return it == relations_.end() ? nullptr : it->second.get();
}

const Relation* Catalog::resolve(std::span<const std::string> search_path,
                                 std::string_view name) const {
  if (const auto* system = find("pg_catalog", name)) return system;
  for (const auto& schema : search_path)
    if (const auto* relation = find(schema, name)) return relation;
  return nullptr;
}

}  // namespace seedproxy::rewriter
