// A bounded least-recently-used cache of rewrites, keyed by the statement's shape (its text with
// constants replaced: rewrite_template.hpp), snapshot version, search_path and the temporary
// tables that shadow catalog relations; one per I/O thread, so lookups take no lock. The text each
// template was made from is also found by its exact bytes, without lexing. Each shape
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

  // One text's lookup, made once for find and store. The text's own key (context and text) is
  // made at once; its shape key and constants, which take lexing the text, only when the text
  // itself is not held (shape()).
  struct Probe {
    std::size_t context_size = 0;  // version, counts, search_path, temporary tables
    // The context, then the text itself; once shaped, the context, then the text's shape (one
    // buffer: a template hit makes no more allocations than before the exact index).
    std::string key;
    bool shaped = false;
    std::vector<Token> constants;
  };
  [[nodiscard]] static Probe probe(std::string_view sql, std::uint64_t version,
                                   std::span<const std::string> path,
                                   std::span<const std::string> temp_tables = {});
  // Fills in the shape key and constants of `probe`, made from `sql`.
  static void shape(Probe& probe, std::string_view sql);

  // The rewrite of `sql` (probed as `probe`), or null: the rewrite of a text the cache was given
  // as is, else that of a template the text's constants fit (shaping `probe`).
  [[nodiscard]] std::shared_ptr<const CachedRewrite> find(Probe& probe, std::string_view sql);
  // Keeps `value`, the rewrite of `sql`, as a template whose slots are `value_constants`
  // (RewriteResult::value_constants); none: only `sql` itself gets it back.
  void store(Probe& probe, std::string_view sql, std::shared_ptr<const CachedRewrite> value,
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
  struct Held {
    RewriteTemplate tmpl;
    // The exact key of the text the template was made from (in exact_index_ unless another
    // template of the same text replaced it there); on the heap, so the index's view stays put.
    std::unique_ptr<const std::string> exact;
  };
  struct Slot {
    std::string key;
    std::vector<Held> templates;  // most recently stored first
    std::size_t bytes = 0;
  };
  void evict();
  void forget(const Held& held);  // its exact key, from exact_index_
  std::list<Slot> order_;         // front: most recently used
  std::unordered_map<std::string_view, std::list<Slot>::iterator> index_;
  // Each template's own text, by exact key: a text sent again is found without lexing it.
  struct Exact {
    std::list<Slot>::iterator slot;
    std::shared_ptr<const CachedRewrite> rewrite;  // the template's own
  };
  std::unordered_map<std::string_view, Exact> exact_index_;
  std::size_t max_entries_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

}  // namespace seedproxy::rewriter
