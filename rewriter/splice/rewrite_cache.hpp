// A bounded least-recently-used cache of rewrite results, keyed by statement text, snapshot
// version, search_path and the temporary tables that shadow catalog relations; one per I/O
// thread, so lookups take no lock.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rewriter/splice/rewriter.hpp"

namespace seedproxy::rewriter {

// What a cached rewrite keeps: no pointers into the snapshot it came from.
struct CachedRewrite {
  RewriteResult::Outcome outcome = RewriteResult::Outcome::unchanged;
  std::string sql;
  SqlError error;
  std::string refusal_marker;
  // The virtual attributes the text reads, once per statement that reads them, by name.
  struct Read {
    std::string schema, table, attribute;
  };
  std::vector<Read> reads;
  // The edits that made `sql` from the client's text, for error positions (client_position).
  SpliceMap splices;
};

class RewriteCache {
 public:
  RewriteCache(std::size_t max_entries, std::size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // The cached result, or null. `temp_tables` are the RewriteRequest's.
  [[nodiscard]] std::shared_ptr<const CachedRewrite> find(
      std::string_view sql, std::uint64_t version, std::span<const std::string> path,
      std::span<const std::string> temp_tables = {});
  void store(std::string_view sql, std::uint64_t version, std::span<const std::string> path,
             std::shared_ptr<const CachedRewrite> value,
             std::span<const std::string> temp_tables = {});

  [[nodiscard]] std::uint64_t hits() const noexcept { return hits_; }
  [[nodiscard]] std::uint64_t misses() const noexcept { return misses_; }

 private:
  static std::string make_key(std::string_view sql, std::uint64_t version,
                              std::span<const std::string> path,
                              std::span<const std::string> temp_tables);
  struct Slot {
    std::string key;
    std::shared_ptr<const CachedRewrite> value;
  };
  std::list<Slot> order_;  // front: most recently used
  std::unordered_map<std::string_view, std::list<Slot>::iterator> index_;
  std::size_t max_entries_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace seedproxy::rewriter
