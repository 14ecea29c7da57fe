// A bounded least-recently-used cache of rewrites, keyed by the statement's shape (its text with
// constants replaced: rewrite_template.hpp), snapshot version, search_path and the temporary
// tables that shadow catalog relations; one per I/O thread, so lookups take no lock. Each shape
// holds a few templates (texts of one shape whose pinned constants differ, ORDER BY 1 and
// ORDER BY 2); a text gets the first whose pinned constants it matches, with its own constants
// spliced in.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rewriter/splice/cached_rewrite.hpp"
#include "rewriter/splice/rewrite_template.hpp"

namespace seedproxy::rewriter {

class RewriteCache {
 public:
  // Templates one shape holds at most; the oldest goes first.
  static constexpr std::size_t max_templates_per_shape = 8;

  RewriteCache(std::size_t max_entries, std::size_t max_bytes)
      : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // One text's lookup: its key and constants, made once for find and store.
  struct Probe {
    std::string key;
    std::vector<Token> constants;
  };
  [[nodiscard]] static Probe probe(std::string_view sql, std::uint64_t version,
                                   std::span<const std::string> path,
                                   std::span<const std::string> temp_tables = {});

  // The rewrite of `sql` (probed as `probe`), or null.
  [[nodiscard]] std::shared_ptr<const CachedRewrite> find(const Probe& probe, std::string_view sql);
  // Keeps `value`, the rewrite of `sql`, as a template whose slots are `value_constants`
  // (RewriteResult::value_constants); none: only `sql` itself gets it back.
  void store(const Probe& probe, std::string_view sql, std::shared_ptr<const CachedRewrite> value,
             std::span<const std::int32_t> value_constants = {});

  // The same for callers that look up once: `temp_tables` are the RewriteRequest's.
  [[nodiscard]] std::shared_ptr<const CachedRewrite> find(
      std::string_view sql, std::uint64_t version, std::span<const std::string> path,
      std::span<const std::string> temp_tables = {});
  void store(std::string_view sql, std::uint64_t version, std::span<const std::string> path,
             std::shared_ptr<const CachedRewrite> value,
             std::span<const std::string> temp_tables = {});

  [[nodiscard]] std::uint64_t hits() const noexcept { return hits_; }
  [[nodiscard]] std::uint64_t misses() const noexcept { return misses_; }
  [[nodiscard]] std::size_t entries() const noexcept { return order_.size(); }
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct Slot {
    std::string key;
    std::vector<RewriteTemplate> templates;  // most recently stored first
    std::size_t bytes = 0;
  };
  void evict();
  std::list<Slot> order_;  // front: most recently used
  std::unordered_map<std::string_view, std::list<Slot>::iterator> index_;
  std::size_t max_entries_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace seedproxy::rewriter
