// LRU bookkeeping for rewrite templates by shape, with entry and byte bounds.
#include "rewriter/splice/rewrite_cache.hpp"

#include <algorithm>

namespace seedproxy::rewriter {

RewriteCache::Probe RewriteCache::probe(std::string_view sql, std::uint64_t version,
                                        std::span<const std::string> path,
                                        std::span<const std::string> temp_tables) {
  // The counts first, then NUL-terminated names (a name cannot hold a NUL), then the shape: no
  // two requests share a key unless they differ only in constants.
  Shape shape = shape_of(sql);
  Probe out;
  out.key.reserve(shape.body.size() + 32);
  out.key.append(reinterpret_cast<const char*>(&version), sizeof version);
  for (const std::size_t count : {path.size(), temp_tables.size()}) {
    const auto n = static_cast<std::uint32_t>(count);
    out.key.append(reinterpret_cast<const char*>(&n), sizeof n);
  }
  for (const auto& schema : path) out.key.append(schema).push_back('\0');
  for (const auto& table : temp_tables) out.key.append(table).push_back('\0');
  out.key.append(shape.body);
  out.constants = std::move(shape.constants);
  return out;
}

std::shared_ptr<const CachedRewrite> RewriteCache::find(const Probe& probe, std::string_view sql) {
  const auto it = index_.find(probe.key);
  if (it != index_.end()) {
    for (const auto& tmpl : it->second->templates) {
      if (!template_matches(tmpl, sql, probe.constants)) continue;
      ++hits_;
      order_.splice(order_.begin(), order_, it->second);
      return instantiate(tmpl, sql, probe.constants);
    }
  }
  ++misses_;
  return nullptr;
}

void RewriteCache::store(const Probe& probe, std::string_view sql,
                         std::shared_ptr<const CachedRewrite> value,
                         std::span<const std::int32_t> value_constants) {
  if (!value) return;
  auto tmpl = make_template(sql, probe.constants, value_constants, std::move(value));
  const std::size_t cost = template_bytes(tmpl);
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
    const std::size_t dropped = template_bytes(slot.templates.back());
    slot.bytes -= dropped;
    bytes_ -= dropped;
    slot.templates.pop_back();
  }
  slot.templates.insert(slot.templates.begin(), std::move(tmpl));
  slot.bytes += cost;
  bytes_ += cost;
  evict();
}

void RewriteCache::evict() {
  while (order_.size() > max_entries_ || bytes_ > max_bytes_) {
    const Slot& last = order_.back();
    bytes_ -= last.bytes;
    index_.erase(last.key);
    order_.pop_back();
  }
}

std::shared_ptr<const CachedRewrite> RewriteCache::find(std::string_view sql, std::uint64_t version,
                                                        std::span<const std::string> path,
                                                        std::span<const std::string> temp_tables) {
  return find(probe(sql, version, path, temp_tables), sql);
}

void RewriteCache::store(std::string_view sql, std::uint64_t version,
                         std::span<const std::string> path,
                         std::shared_ptr<const CachedRewrite> value,
                         std::span<const std::string> temp_tables) {
  store(probe(sql, version, path, temp_tables), sql, std::move(value));
}

}  // namespace seedproxy::rewriter
