// Lock-free counting behind the Observer interface, and the snapshot metrics are built from.
#include "proxy/proxy_stats.hpp"

#include <algorithm>
#include <cmath>

namespace seedproxy::proxy {

AtomicHistogram::AtomicHistogram(std::span<const double> upper_bounds_seconds)
    : bounds_seconds_(upper_bounds_seconds.begin(), upper_bounds_seconds.end()),
      buckets_(new std::atomic<std::uint64_t>[upper_bounds_seconds.size() + 1]) {
  bounds_ns_.reserve(bounds_seconds_.size());
  for (double bound : bounds_seconds_) {
    bounds_ns_.push_back(static_cast<std::int64_t>(std::llround(bound * 1e9)));
  }
  for (std::size_t i = 0; i <= bounds_seconds_.size(); ++i) buckets_[i].store(0);
}

void AtomicHistogram::observe(std::chrono::nanoseconds elapsed) noexcept {
  const std::int64_t ns = std::max<std::int64_t>(elapsed.count(), 0);
  // Prometheus buckets are "less than or equal"; the last slot is +Inf.
  std::size_t i = 0;
  while (i < bounds_ns_.size() && ns > bounds_ns_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
}

AtomicHistogram::Snapshot AtomicHistogram::snapshot() const {
  Snapshot result;
  result.upper_bounds = bounds_seconds_;
  result.cumulative.reserve(bounds_seconds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_seconds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    result.cumulative.push_back(running);
  }
  result.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return result;
}

ProxyStats::ProxyStats()
    : upstream_connect_(upstream_connect_buckets), rewrite_duration_(rewrite_buckets) {
  for (auto& histogram : statement_duration_) {
    histogram = std::make_unique<AtomicHistogram>(statement_buckets);
  }
  auto empty = std::make_unique<const Index>();
  index_.store(empty.get(), std::memory_order_release);
  indexes_.push_back(std::move(empty));
}

ProxyStats::~ProxyStats() = default;

void ProxyStats::upstream_connected(Duration elapsed) noexcept {
  upstream_connect_.observe(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
}

void ProxyStats::statement_finished(StatementKind kind, Duration elapsed) noexcept {
  statement_duration_[static_cast<std::size_t>(kind)]->observe(
      std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
}

void ProxyStats::statement_rewritten(Duration elapsed, bool cache_hit) noexcept {
  rewrite_duration_.observe(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
  (cache_hit ? rewrite_cache_hits_ : rewrite_cache_misses_).add();
}

void ProxyStats::attribute_read(std::string_view database, std::string_view entity,
                                std::string_view attribute) noexcept {
  const Key key{database, entity, attribute};
  const Index* index = index_.load(std::memory_order_acquire);
  if (auto found = index->find(key); found != index->end()) {
    found->second->reads.add();
    return;
  }
  AttributeCounter* counter = nullptr;
  try {
    counter = add_attribute(key);
  } catch (...) {
    // Out of memory while adding a series: losing one count beats ending the session.
  }
  if (counter != nullptr) {
    counter->reads.add();
  } else {
    attribute_reads_dropped_.add();
  }
}

ProxyStats::AttributeCounter* ProxyStats::add_attribute(const Key& key) {
  std::lock_guard lock(add_mutex_);
  const Index* current = index_.load(std::memory_order_relaxed);
  if (auto found = current->find(key); found != current->end()) return found->second;
  if (counters_.size() >= max_attribute_series) return nullptr;
  AttributeCounter& counter = counters_.emplace_back();
  counter.database = std::get<0>(key);
  counter.entity = std::get<1>(key);
  counter.attribute = std::get<2>(key);
  auto next = std::make_unique<Index>(*current);
  next->emplace(Key{counter.database, counter.entity, counter.attribute}, &counter);
  index_.store(next.get(), std::memory_order_release);
  indexes_.push_back(std::move(next));
  return &counter;
}

ProxyStats::Snapshot ProxyStats::snapshot() const {
  Snapshot result;
  // Closed before accepted: a connection closing between the two loads cannot make current
  // negative.
  result.clients_closed = clients_closed_.get();
  result.clients_accepted = clients_accepted_.get();
  result.clients_refused = clients_refused_.get();
  for (std::size_t i = 0; i < upstream_stage_count; ++i) {
    result.upstream_errors[i] = upstream_errors_[i].get();
  }
  for (std::size_t i = 0; i < statement_kind_count; ++i) {
    result.statements[i] = statements_[i].get();
    result.statement_duration[i] = statement_duration_[i]->snapshot();
  }
  for (std::size_t i = 0; i < peer_count; ++i) {
    result.protocol_errors[i] = protocol_errors_[i].get();
  }
  result.rewrite_cache_hits = rewrite_cache_hits_.get();
  result.rewrite_cache_misses = rewrite_cache_misses_.get();
  result.attribute_reads_dropped = attribute_reads_dropped_.get();
  result.upstream_connect = upstream_connect_.snapshot();
  result.rewrite_duration = rewrite_duration_.snapshot();
  const Index* index = index_.load(std::memory_order_acquire);
  result.attribute_reads.reserve(index->size());
  for (const auto& [key, counter] : *index) {  // the map is ordered, so the output is too
    result.attribute_reads.push_back(
        {counter->database, counter->entity, counter->attribute, counter->reads.get()});
  }
  return result;
}

}  // namespace seedproxy::proxy
