// LRU bookkeeping for rewrite templates by shape, with entry and byte bounds, and the index of
// each template's own text.
#include "rewriter/splice/rewrite_cache.hpp"

#include <algorithm>

namespace seedproxy::rewriter {

RewriteCache::Probe RewriteCache::probe(std::string_view sql, std::uint64_t version,
                                        std::span<const std::string> path,
                                        std::span<const std::string> temp_tables) {
  // The counts first, then NUL-terminated names (a name cannot hold a NUL), then the text or its
  // shape: no two requests share a key unless they differ only in constants.
  Probe out;
  out.key.reserve(sql.size() + 64);
  out.key.append(reinterpret_cast<const char*>(&version), sizeof version);
  for (const std::size_t count : {path.size(), temp_tables.size()}) {
    const auto n = static_cast<std::uint32_t>(count);
    out.key.append(reinterpret_cast<const char*>(&n), sizeof n);
  }
  for (const auto& schema : path) out.key.append(schema).push_back('\0');
  for (const auto& table : temp_tables) out.key.append(table).push_back('\0');
  out.context_size = out.key.size();
  out.key.append(sql);
  return out;
}

void RewriteCache::shape(Probe& probe, std::string_view sql) {
  if (probe.shaped) return;
  Shape shape = shape_of(sql);
  probe.key.resize(probe.context_size);
  probe.key.append(shape.body);
  probe.constants = std::move(shape.constants);
  probe.shaped = true;
}

std::shared_ptr<const CachedRewrite> RewriteCache::find(Probe& probe, std::string_view sql) {
  if (const auto exact = probe.shaped ? exact_index_.end() : exact_index_.find(probe.key);
      exact != exact_index_.end()) {
    ++hits_;
    order_.splice(order_.begin(), order_, exact->second.slot);
    return exact->second.rewrite;
  }
  shape(probe, sql);
  const auto it = index_.find(probe.key);
  if (it != index_.end()) {
    for (const auto& held : it->second->templates) {
      if (!template_matches(held.tmpl, sql, probe.constants)) continue;
      ++hits_;
      order_.splice(order_.begin(), order_, it->second);
      return instantiate(held.tmpl, sql, probe.constants);
    }
  }
  ++misses_;
  return nullptr;
}

void RewriteCache::forget(const Held& held) {
  const auto it = exact_index_.find(*held.exact);
  if (it != exact_index_.end() && it->first.data() == held.exact->data()) exact_index_.erase(it);
}

void RewriteCache::store(Probe& probe, std::string_view sql,
                         std::shared_ptr<const CachedRewrite> value,
                         std::span<const std::int32_t> value_constants) {
  if (!value) return;
  shape(probe, sql);
  auto exact = std::make_unique<std::string>(probe.key, 0, probe.context_size);
  exact->append(sql);
  Held held{make_template(sql, probe.constants, value_constants, std::move(value)),
            std::move(exact)};
  const std::size_t cost = template_bytes(held.tmpl) + held.exact->size();
  if (probe.key.size() + cost > max_bytes_ / 8) return;
  auto it = index_.find(probe.key);
  if (it == index_.end()) {
    order_.push_front(Slot{probe.key, {}, probe.key.size()});
    it = index_.emplace(order_.front().key, order_.begin()).first;
    bytes_ += probe.key.size();
  } else {
    order_.splice(order_.begin(), order_, it->second);
  }
  Slot& slot = *it->second;
  if (slot.templates.size() >= max_templates_per_shape) {
    const Held& last = slot.templates.back();
    const std::size_t dropped = template_bytes(last.tmpl) + last.exact->size();
    forget(last);
    slot.bytes -= dropped;
    bytes_ -= dropped;
    slot.templates.pop_back();
  }
  // The newest template of a text is the one its exact key finds (keyed by its own copy).
  exact_index_.erase(std::string_view(*held.exact));
  exact_index_.emplace(std::string_view(*held.exact), Exact{it->second, held.tmpl.rewrite});
  slot.templates.insert(slot.templates.begin(), std::move(held));
  slot.bytes += cost;
  bytes_ += cost;
  evict();
}

void RewriteCache::evict() {
  while (order_.size() > max_entries_ || bytes_ > max_bytes_) {
    const Slot& last = order_.back();
    for (const auto& held : last.templates) forget(held);
    bytes_ -= last.bytes;
    index_.erase(last.key);
    order_.pop_back();
  }
}

std::shared_ptr<const CachedRewrite> RewriteCache::find(std::string_view sql, std::uint64_t version,
                                                        std::span<const std::string> path,
                                                        std::span<const std::string> temp_tables) {
  auto probed = probe(sql, version, path, temp_tables);
  return find(probed, sql);
}

void RewriteCache::store(std::string_view sql, std::uint64_t version,
                         std::span<const std::string> path,
                         std::shared_ptr<const CachedRewrite> value,
                         std::span<const std::string> temp_tables) {
  auto probed = probe(sql, version, path, temp_tables);
  store(probed, sql, std::move(value));
}

}  // namespace seedproxy::rewriter
