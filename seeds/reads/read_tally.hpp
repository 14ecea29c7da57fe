// Reads of each seed counted by this proxy since the last flush: sessions add on I/O threads, the
// read flusher takes the counts and writes them to the registry. Adding never waits on the
// database and never allocates once an attribute has been counted before.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::seeds {

struct CountedReads {
  std::string database, schema, table, attribute;
  std::uint64_t reads = 0;
};

class ReadTally {
 public:
  ReadTally();
  ~ReadTally();
  ReadTally(const ReadTally&) = delete;
  ReadTally& operator=(const ReadTally&) = delete;

  // One executed statement read `attribute` of schema.table in `database` (`n` of them). Any
  // thread.
  void add(std::string_view database, std::string_view schema, std::string_view table,
           std::string_view attribute, std::uint64_t n = 1) noexcept;

  // The counts added since the previous take, non-zero ones only; resets them. Any thread.
  [[nodiscard]] std::vector<CountedReads> take();
  // Gives counts back after a failed flush, so they are written by the next one.
  void restore(const std::vector<CountedReads>& counts) noexcept;

 private:
  struct Shard;
  static constexpr std::size_t shard_count = 16;
  std::array<std::unique_ptr<Shard>, shard_count> shards_;
};

}  // namespace seedproxy::seeds
