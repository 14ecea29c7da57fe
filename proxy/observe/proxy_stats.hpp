// The Observer that counts: relaxed atomics and lock-free histograms written by the I/O threads,
// read as a consistent-enough snapshot when metrics are scraped.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "proxy/observe/observer.hpp"

namespace seedproxy::proxy {

// A counter on its own cache line, so threads bumping different counters do not contend.
struct alignas(64) PaddedCounter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) noexcept { value.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
};

// Histogram with fixed upper bounds in seconds: one relaxed increment of a bucket and one of the
// sum (kept in nanoseconds, so no floating-point CAS loop) per observation.
class AtomicHistogram {
 public:
  struct Snapshot {
    std::vector<double> upper_bounds;       // seconds, ascending, without +Inf
    std::vector<std::uint64_t> cumulative;  // per bound, then one for +Inf (== count)
    double sum_seconds = 0.0;
    [[nodiscard]] std::uint64_t count() const noexcept {
      return cumulative.empty() ? 0 : cumulative.back();
    }
  };

  explicit AtomicHistogram(std::span<const double> upper_bounds_seconds);
  AtomicHistogram(const AtomicHistogram&) = delete;
  AtomicHistogram& operator=(const AtomicHistogram&) = delete;

  void observe(std::chrono::nanoseconds elapsed) noexcept;
  [[nodiscard]] Snapshot snapshot() const;

 private:
  std::vector<double> bounds_seconds_;
  std::vector<std::int64_t> bounds_ns_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds + the +Inf bucket
  alignas(64) std::atomic<std::uint64_t> sum_ns_{0};
};

// Bucket bounds (seconds) of the proxy's histograms; documented in docs/metrics.md.
inline constexpr std::array<double, 16> statement_buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
inline constexpr std::array<double, 12> upstream_connect_buckets{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 5.0};
inline constexpr std::array<double, 12> rewrite_buckets{
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1};

class ProxyStats final : public Observer {
 public:
  // Distinct (database, entity, attribute) label sets kept; reads of further ones are counted in
  // attribute_reads_dropped so a runaway label set cannot grow memory without bound.
  static constexpr std::size_t max_attribute_series = 8192;

  struct AttributeReads {
    std::string database, entity, attribute;
    std::uint64_t reads = 0;
  };

  struct Snapshot {
    std::uint64_t clients_accepted = 0, clients_refused = 0, clients_closed = 0;
    std::array<std::uint64_t, upstream_stage_count> upstream_errors{};
    std::array<std::uint64_t, statement_kind_count> statements{};
    std::array<std::uint64_t, peer_count> protocol_errors{};
    std::array<std::array<std::uint64_t, tls_outcome_count>, peer_count> tls_handshakes{};
    std::uint64_t rewrite_cache_hits = 0, rewrite_cache_misses = 0;
    std::uint64_t attribute_reads_dropped = 0;
    std::uint64_t servers_parked = 0, servers_reused = 0, servers_let_go = 0;
    AtomicHistogram::Snapshot upstream_connect;
    std::array<AtomicHistogram::Snapshot, statement_kind_count> statement_duration;
    AtomicHistogram::Snapshot rewrite_duration;
    std::vector<AttributeReads> attribute_reads;  // sorted by database, entity, attribute
    // Accepted minus closed; read in that order so it never goes negative.
    [[nodiscard]] std::uint64_t clients_current() const noexcept {
      return clients_accepted >= clients_closed ? clients_accepted - clients_closed : 0;
    }
    // Parked and not yet reused or let go; read in that order, like clients_current().
    [[nodiscard]] std::uint64_t servers_parked_now() const noexcept {
      const auto gone = servers_reused + servers_let_go;
      return servers_parked >= gone ? servers_parked - gone : 0;
    }
  };

  ProxyStats();
  ~ProxyStats() override;

  void client_accepted() noexcept override { clients_accepted_.add(); }
  void client_refused() noexcept override { clients_refused_.add(); }
  void client_closed() noexcept override { clients_closed_.add(); }
  void upstream_connected(Duration elapsed) noexcept override;
  void upstream_error(UpstreamStage stage) noexcept override {
    upstream_errors_[static_cast<std::size_t>(stage)].add();
  }
  void statement_started(StatementKind kind) noexcept override {
    statements_[static_cast<std::size_t>(kind)].add();
  }
  void statement_finished(StatementKind kind, Duration elapsed) noexcept override;
  void statement_rewritten(Duration elapsed, bool cache_hit) noexcept override;
  void attribute_read(std::string_view database, std::string_view entity,
                      std::string_view attribute) noexcept override;
  void protocol_error(Peer culprit) noexcept override {
    protocol_errors_[static_cast<std::size_t>(culprit)].add();
  }
  void tls_handshake(Peer leg, TlsOutcome outcome) noexcept override {
    tls_handshakes_[static_cast<std::size_t>(leg)][static_cast<std::size_t>(outcome)].add();
  }
  void server_parked() noexcept override { servers_parked_.add(); }
  void server_reused() noexcept override { servers_reused_.add(); }
  void server_let_go() noexcept override { servers_let_go_.add(); }

  [[nodiscard]] Snapshot snapshot() const;

 private:
  struct AttributeCounter {
    std::string database, entity, attribute;
    PaddedCounter reads;
  };
  using Key = std::tuple<std::string_view, std::string_view, std::string_view>;

  [[nodiscard]] AttributeCounter* add_attribute(const Key& key, std::size_t hash);

  PaddedCounter clients_accepted_, clients_refused_, clients_closed_;
  std::array<PaddedCounter, upstream_stage_count> upstream_errors_;
  std::array<PaddedCounter, statement_kind_count> statements_;
  std::array<PaddedCounter, peer_count> protocol_errors_;
  std::array<std::array<PaddedCounter, tls_outcome_count>, peer_count> tls_handshakes_;
  PaddedCounter rewrite_cache_hits_, rewrite_cache_misses_;
  PaddedCounter attribute_reads_dropped_;
  PaddedCounter servers_parked_, servers_reused_, servers_let_go_;
  AtomicHistogram upstream_connect_;
  std::array<std::unique_ptr<AtomicHistogram>, statement_kind_count> statement_duration_;
  AtomicHistogram rewrite_duration_;

  // Attribute counters in an open-addressing hash table (linear probing, never shrinks): readers
  // probe with acquire loads and never lock; a new attribute is placed in the first empty slot of
  // its probe sequence under the mutex. Twice as many slots as series keeps probes short.
  static constexpr std::size_t attribute_slots = 2 * max_attribute_series;
  std::unique_ptr<std::atomic<AttributeCounter*>[]> slots_;
  std::mutex add_mutex_;
  std::deque<AttributeCounter> counters_;  // guarded by add_mutex_; stable addresses
};

}  // namespace seedproxy::proxy
