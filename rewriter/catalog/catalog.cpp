// Relation lookup by qualified name and by search_path, and the catalog after DDL: a shared base
// of the relations as loaded plus the few changed since, so a copy per DDL stays cheap.
#include "rewriter/catalog/catalog.hpp"

#include <algorithm>
#include <cstring>

namespace seedproxy::rewriter {
namespace {

std::string key_of(std::string_view schema, std::string_view name) {
  std::string key;
  key.reserve(schema.size() + name.size() + 1);
  key.append(schema).push_back('\0');
  key.append(name);
  return key;
}

std::string_view name_of(std::string_view key) { return key.substr(key.find('\0') + 1); }

// Calls `use` with the key of schema.name, built on the stack when it fits (identifiers are at
// most 63 bytes): lookups run for every relation a statement names.
template <typename Use>
auto with_key(std::string_view schema, std::string_view name, Use&& use) {
  char stack[160];
  const std::size_t size = schema.size() + 1 + name.size();
  if (size > sizeof stack) return use(std::string_view(key_of(schema, name)));
  std::memcpy(stack, schema.data(), schema.size());
  stack[schema.size()] = '\0';
  std::memcpy(stack + schema.size() + 1, name.data(), name.size());
  return use(std::string_view(stack, size));
}

}  // namespace

Catalog::Catalog(std::vector<Relation> relations, std::uint64_t version) : version_(version) {
  auto base = std::make_shared<Base>();
  base->by_key.reserve(relations.size());
  for (auto& relation : relations) {
    auto key = key_of(relation.schema, relation.name);
    base->keys_by_name[relation.name].push_back(key);
    base->by_key.insert_or_assign(std::move(key),
                                  std::make_shared<const Relation>(std::move(relation)));
  }
  size_ = base->by_key.size();
  base_ = std::move(base);
}

const Relation* Catalog::find_key(std::string_view key) const {
  const auto change =
      std::lower_bound(changes_.begin(), changes_.end(), key,
                       [](const Change& c, std::string_view k) { return c.key < k; });
  if (change != changes_.end() && change->key == key) return change->relation.get();
  if (!base_) return nullptr;
  const auto it = base_->by_key.find(key);
  return it == base_->by_key.end() ? nullptr : it->second.get();
}

bool Catalog::in_base(std::string_view key) const {
  return base_ && base_->by_key.find(key) != base_->by_key.end();
}

void Catalog::set(std::string key, std::shared_ptr<const Relation> relation) {
  auto at = std::lower_bound(changes_.begin(), changes_.end(), key,
                             [](const Change& c, const std::string& k) { return c.key < k; });
  const bool listed = at != changes_.end() && at->key == key;
  if (!relation && !in_base(key)) {  // nothing to hide: the change itself goes
    if (listed) changes_.erase(at);
    return;
  }
  if (listed)
    at->relation = std::move(relation);
  else
    changes_.insert(at, {std::move(key), std::move(relation)});
}

void Catalog::settle() {
  if (changes_.size() > max_changes) {
    auto base = std::make_shared<Base>(base_ ? *base_ : Base{});
    for (auto& change : changes_) {
      auto& keys = base->keys_by_name[std::string(name_of(change.key))];
      const auto listed = std::find(keys.begin(), keys.end(), change.key);
      if (change.relation) {
        if (listed == keys.end()) keys.push_back(change.key);
        base->by_key.insert_or_assign(std::move(change.key), std::move(change.relation));
      } else {
        if (listed != keys.end()) keys.erase(listed);
        base->by_key.erase(change.key);
      }
    }
    changes_.clear();
    base_ = std::move(base);
  }
  size_ = base_ ? base_->by_key.size() : 0;
  for (const auto& change : changes_) {
    const bool was = in_base(change.key);
    if (was && !change.relation) --size_;
    if (!was && change.relation) ++size_;
  }
}

Catalog Catalog::patched(std::span<const std::string> names, std::vector<Relation> fresh,
                         std::uint64_t version) const {
  Catalog out = *this;
  out.version_ = version;
  std::vector<std::string> gone;
  for (const auto& name : names) {
    if (!base_) break;
    const auto keys = base_->keys_by_name.find(std::string_view(name));
    if (keys != base_->keys_by_name.end())
      gone.insert(gone.end(), keys->second.begin(), keys->second.end());
  }
  for (const auto& change : changes_)
    if (std::binary_search(names.begin(), names.end(), name_of(change.key)))
      gone.push_back(change.key);
  for (auto& key : gone) out.set(std::move(key), nullptr);
  for (auto& relation : fresh) {
    auto key = key_of(relation.schema, relation.name);
    out.set(std::move(key), std::make_shared<const Relation>(std::move(relation)));
  }
  out.settle();
  return out;
}

Catalog Catalog::replaced(std::string_view schema, std::string_view name, Relation fresh,
                          std::uint64_t version) const {
  Catalog out = *this;
  out.version_ = version;
  out.set(key_of(schema, name), nullptr);
  auto key = key_of(fresh.schema, fresh.name);
  out.set(std::move(key), std::make_shared<const Relation>(std::move(fresh)));
  out.settle();
  return out;
}

const Relation* Catalog::find(std::string_view schema, std::string_view name) const {
  return with_key(schema, name, [this](std::string_view key) { return find_key(key); });
}

const Relation* Catalog::resolve(std::span<const std::string> search_path,
                                 std::string_view name) const {
  if (const auto* system = find("pg_catalog", name)) return system;
  for (const auto& schema : search_path)
    if (const auto* relation = find(schema, name)) return relation;
  return nullptr;
}

}  // namespace seedproxy::rewriter
