// Reads counted per attribute in 16 mutex-guarded shards: a session only ever contends with the
// sessions counting attributes that hash to the same shard, and with the flusher's brief take().
#include "seeds/reads/read_tally.hpp"

#include <functional>
#include <limits>
#include <new>
#include <unordered_map>

namespace seedproxy::seeds {
namespace {

// The four names of a counted attribute, owned (map keys) ...
struct Names {
  std::string database, schema, table, attribute;
};

// ... or borrowed, with their hash computed once for both the shard and the bucket.
struct Lookup {
  std::string_view database, schema, table, attribute;
  std::size_t hash;
};

std::size_t hash_of(std::string_view database, std::string_view schema, std::string_view table,
                    std::string_view attribute) noexcept {
  const std::hash<std::string_view> hash;
  std::size_t seed = hash(database);
  for (const auto part : {schema, table, attribute})
    seed ^= hash(part) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  return seed;
}

// Transparent, so add() looks a Lookup up without building a Names (no allocation).
struct NamesHash {
  using is_transparent = void;
  std::size_t operator()(const Names& n) const noexcept {
    return hash_of(n.database, n.schema, n.table, n.attribute);
  }
  std::size_t operator()(const Lookup& l) const noexcept { return l.hash; }
};

struct NamesEqual {
  using is_transparent = void;
  static bool same(const Names& a, std::string_view database, std::string_view schema,
                   std::string_view table, std::string_view attribute) noexcept {
    return a.attribute == attribute && a.table == table && a.schema == schema &&
           a.database == database;
  }
  bool operator()(const Names& a, const Names& b) const noexcept {
    return same(a, b.database, b.schema, b.table, b.attribute);
  }
  bool operator()(const Names& a, const Lookup& b) const noexcept {
    return same(a, b.database, b.schema, b.table, b.attribute);
  }
  bool operator()(const Lookup& a, const Names& b) const noexcept { return (*this)(b, a); }
};

}  // namespace

// Entries stay after take() (at zero): the next read of the attribute finds them and allocates
// nothing. Their number is bounded by the seeds sessions have read.
struct ReadTally::Shard {
  std::mutex mutex;
  std::unordered_map<Names, std::uint64_t, NamesHash, NamesEqual> counts;
};

namespace {

// Which shard: the high bits, so the buckets (low bits) within a shard stay well spread.
std::size_t shard_of(std::size_t hash, std::size_t shards) noexcept {
  return (hash >> (std::numeric_limits<std::size_t>::digits - 8)) % shards;
}

}  // namespace

ReadTally::ReadTally() {
  for (auto& shard : shards_) shard = std::make_unique<Shard>();
}

ReadTally::~ReadTally() = default;

void ReadTally::add(std::string_view database, std::string_view schema, std::string_view table,
                    std::string_view attribute, std::uint64_t n) noexcept {
  if (n == 0) return;
  const Lookup key{database, schema, table, attribute, hash_of(database, schema, table, attribute)};
  Shard& shard = *shards_[shard_of(key.hash, shard_count)];
  const std::lock_guard lock(shard.mutex);
  if (auto found = shard.counts.find(key); found != shard.counts.end()) {
    found->second += n;
    return;
  }
  try {
    shard.counts.emplace(Names{std::string(database), std::string(schema), std::string(table),
                               std::string(attribute)},
                         n);
  } catch (const std::bad_alloc&) {
    // Out of memory: this read goes uncounted rather than failing the client's statement.
  }
}

std::vector<CountedReads> ReadTally::take() {
  std::vector<CountedReads> out;
  for (auto& shard : shards_) {
    const std::lock_guard lock(shard->mutex);
    for (auto& [names, reads] : shard->counts) {
      if (reads == 0) continue;
      out.push_back({names.database, names.schema, names.table, names.attribute, reads});
      reads = 0;
    }
  }
  return out;
}

void ReadTally::restore(const std::vector<CountedReads>& counts) noexcept {
  for (const auto& c : counts) add(c.database, c.schema, c.table, c.attribute, c.reads);
}

}  // namespace seedproxy::seeds
