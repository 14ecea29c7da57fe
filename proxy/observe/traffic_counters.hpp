// Per-I/O-thread counters for SHOW STATS. Only their own thread writes them (a relaxed load and
// store, no locked read-modify-write on the hot path); any thread reads them and sums.
#pragma once

#include <atomic>
#include <cstdint>

namespace seedproxy::proxy {

class SingleWriterCounter {
 public:
  void add(std::uint64_t n) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t get() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

struct TrafficCounters {
  SingleWriterCounter bytes_from_clients;
  SingleWriterCounter bytes_from_server;
  SingleWriterCounter statements_rewritten;  // Query/Parse messages the resolver replaced
};

}  // namespace seedproxy::proxy
