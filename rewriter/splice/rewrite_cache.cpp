// LRU bookkeeping for rewrite results, with entry and byte bounds.
#include "rewriter/splice/rewrite_cache.hpp"

namespace seedproxy::rewriter {

namespace {

// What an entry costs the cache's byte budget: its key, its text and map, and a fixed overhead.
std::size_t cost_of(const std::string& key, const CachedRewrite* value) {
  if (!value) return key.size() + 128;
  return key.size() + value->sql.size() + value->splices.size() * sizeof(Splice) + 128;
}

}  // namespace

std::string RewriteCache::make_key(std::string_view sql, std::uint64_t version,
                                   std::span<const std::string> path,
                                   std::span<const std::string> temp_tables) {
  // The counts first, then NUL-terminated names (a name cannot hold a NUL): no two requests
  // share a key.
  std::string key;
  key.reserve(sql.size() + 32);
  key.append(reinterpret_cast<const char*>(&version), sizeof version);
  for (const std::size_t count : {path.size(), temp_tables.size()}) {
    const auto n = static_cast<std::uint32_t>(count);
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
  }
  for (const auto& schema : path) key.append(schema).push_back('\0');
  for (const auto& table : temp_tables) key.append(table).push_back('\0');
  key.append(sql);
  return key;
}

std::shared_ptr<const CachedRewrite> RewriteCache::find(std::string_view sql, std::uint64_t version,
                                                        std::span<const std::string> path,
                                                        std::span<const std::string> temp_tables) {
  const auto key = make_key(sql, version, path, temp_tables);
  const auto it = index_.find(key);
  if (it == index_.end()) {
    ++misses_;
    return nullptr;
  }
  ++hits_;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->value;
}

void RewriteCache::store(std::string_view sql, std::uint64_t version,
                         std::span<const std::string> path,
                         std::shared_ptr<const CachedRewrite> value,
                         std::span<const std::string> temp_tables) {
  auto key = make_key(sql, version, path, temp_tables);
  const std::size_t cost = cost_of(key, value.get());
  if (cost > max_bytes_ / 8 || index_.count(key)) return;
  order_.push_front(Slot{std::move(key), std::move(value)});
  index_.emplace(order_.front().key, order_.begin());
  bytes_ += cost;
  while (order_.size() > max_entries_ || bytes_ > max_bytes_) {
    const Slot& last = order_.back();
    bytes_ -= cost_of(last.key, last.value.get());
    index_.erase(last.key);
    order_.pop_back();
  }
}

}  // namespace seedproxy::rewriter
