// Lookups over one query level: item columns in '*' order, qualifiers, hiding join aliases.
#include "rewriter/resolve/scope.hpp"

#include <algorithm>

namespace seedproxy::rewriter {

int Scope::add_leaf(Entry entry) {
  const int index = static_cast<int>(items.size());
  entry.item = index;
  Item item;
  item.entry = static_cast<int>(entries.size());
  entries.push_back(std::move(entry));
  items.push_back(std::move(item));
  return index;
}

int Scope::add_join(Item join) {
  const int index = static_cast<int>(items.size());
  if (join.left >= 0) items[static_cast<std::size_t>(join.left)].parent = index;
  if (join.right >= 0) items[static_cast<std::size_t>(join.right)].parent = index;
  items.push_back(std::move(join));
  return index;
}

std::vector<ItemColumn> Scope::columns_of(int index) const {
  std::vector<ItemColumn> out;
  if (index < 0 || index >= static_cast<int>(items.size())) return out;
  const Item& item = items[static_cast<std::size_t>(index)];
  if (item.entry >= 0) {
    const Entry& entry = entries[static_cast<std::size_t>(item.entry)];
    for (std::size_t i = 0; i < entry.columns.size(); ++i)
      out.push_back({entry.columns[i].name, item.entry, i, -1});
    return out;
  }
  for (const auto& name : item.merged) out.push_back({name, -1, 0, index});
  for (const int side : {item.left, item.right})
    for (auto& column : columns_of(side))
      if (std::find(item.merged.begin(), item.merged.end(), column.name) == item.merged.end())
        out.push_back(std::move(column));
  for (std::size_t i = 0; i < item.renamed.size() && i < out.size(); ++i)
    out[i].name = item.renamed[i];
  return out;
}

std::vector<ItemColumn> Scope::visible_columns() const {
  std::vector<ItemColumn> out;
  for (const int item : visible)
    for (auto& column : columns_of(item)) out.push_back(std::move(column));
  return out;
}

void Scope::columns_named(int index, const std::string& name, std::vector<ItemColumn>& out) const {
  if (index < 0 || index >= static_cast<int>(items.size())) return;
  const Item& item = items[static_cast<std::size_t>(index)];
  if (item.entry >= 0) {
    const Entry& entry = entries[static_cast<std::size_t>(item.entry)];
    for (std::size_t i = 0; i < entry.columns.size(); ++i)
      if (entry.columns[i].name == name) out.push_back({name, item.entry, i, -1});
    return;
  }
  if (!item.renamed.empty()) {
    // The alias list renames the join's columns: look them up by their new names.
    for (auto& column : columns_of(index))
      if (column.name == name) out.push_back(std::move(column));
    return;
  }
  if (std::find(item.merged.begin(), item.merged.end(), name) != item.merged.end()) {
    out.push_back({name, -1, 0, index});
    return;
  }
  columns_named(item.left, name, out);
  columns_named(item.right, name, out);
}

std::vector<ItemColumn> Scope::visible_named(const std::string& name) const {
  std::vector<ItemColumn> out;
  for (const int item : visible) columns_named(item, name, out);
  return out;
}

void Scope::find_named_in(int index, bool hidden, const std::vector<std::string>& qualifier,
                          std::optional<Named>& found) const {
  if (found || index < 0) return;
  const Item& item = items[static_cast<std::size_t>(index)];
  if (item.entry >= 0) {
    const Entry& entry = entries[static_cast<std::size_t>(item.entry)];
    if (hidden) return;
    const bool match = qualifier.size() == 1
                           ? entry.refname == qualifier[0]
                           : entry.relation && !entry.aliased && entry.schema == qualifier[0] &&
                                 entry.relname == qualifier[1];
    if (match) found = Named{item.entry, -1, false};
    return;
  }
  if (!item.alias.empty()) {
    if (qualifier.size() == 1 && item.alias == qualifier[0] && !hidden) {
      found = Named{-1, index, false};
      return;
    }
    hidden = true;
  }
  if (!hidden && qualifier.size() == 1 && item.using_alias == qualifier[0]) {
    found = Named{-1, index, true};
    return;
  }
  find_named_in(item.left, hidden, qualifier, found);
  find_named_in(item.right, hidden, qualifier, found);
}

std::optional<Named> Scope::find_named(const std::vector<std::string>& qualifier) const {
  std::optional<Named> found;
  for (const int item : visible) find_named_in(item, false, qualifier, found);
  for (const int item : named_only) find_named_in(item, false, qualifier, found);
  return found;
}

int Scope::hiding_join(int entry) const {
  int hider = -1;
  for (int at = entries[static_cast<std::size_t>(entry)].item; at >= 0;
       at = items[static_cast<std::size_t>(at)].parent)
    if (items[static_cast<std::size_t>(at)].entry < 0 &&
        !items[static_cast<std::size_t>(at)].alias.empty())
      hider = at;
  return hider;
}

bool Scope::null_extended(int entry) const {
  for (int at = entries[static_cast<std::size_t>(entry)].item; at >= 0;) {
    const int parent = items[static_cast<std::size_t>(at)].parent;
    if (parent < 0) return false;
    const Item& join = items[static_cast<std::size_t>(parent)];
    if (join.join_type == "JOIN_FULL" || (join.join_type == "JOIN_LEFT" && join.right == at) ||
        (join.join_type == "JOIN_RIGHT" && join.left == at))
      return true;
    at = parent;
  }
  return false;
}

const Cte* Scope::find_cte(const std::string& name) const {
  for (const Scope* scope = this; scope; scope = scope->parent)
    for (const auto& cte : scope->ctes)
      if (cte.name == name) return &cte;
  return nullptr;
}

}  // namespace seedproxy::rewriter
