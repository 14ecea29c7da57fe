// Lock-free counting behind the Observer interface, and the snapshot metrics are built from.
#include "proxy/observe/proxy_stats.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <tuple>

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
  slots_ = std::make_unique<std::atomic<AttributeCounter*>[]>(attribute_slots);
  for (std::size_t i = 0; i < attribute_slots; ++i) slots_[i].store(nullptr);
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

namespace {

std::size_t hash_key(std::string_view database, std::string_view entity,
                     std::string_view attribute) noexcept {
  const std::hash<std::string_view> hash;
  std::size_t h = hash(database);
  h = h * 31 + hash(entity);
  return h * 31 + hash(attribute);
}

}  // namespace

void ProxyStats::attribute_read(std::string_view database, std::string_view entity,
                                std::string_view attribute) noexcept {
  const Key key{database, entity, attribute};
  const std::size_t hash = hash_key(database, entity, attribute);
  for (std::size_t probe = 0; probe < attribute_slots; ++probe) {
    AttributeCounter* counter =
        slots_[(hash + probe) % attribute_slots].load(std::memory_order_acquire);
    if (counter == nullptr) break;  // not present: add it below
    if (Key{counter->database, counter->entity, counter->attribute} == key) {
      counter->reads.add();
      return;
    }
  }
  AttributeCounter* counter = nullptr;
  try {
    counter = add_attribute(key, hash);
  } catch (...) {
    // Out of memory while adding a series: losing one count beats ending the session.
  }
  (counter != nullptr ? counter->reads : attribute_reads_dropped_).add();
}

ProxyStats::AttributeCounter* ProxyStats::add_attribute(const Key& key, std::size_t hash) {
  std::lock_guard lock(add_mutex_);
  // Probe again: another thread may have added it, and only this thread can fill a slot now.
  for (std::size_t probe = 0; probe < attribute_slots; ++probe) {
    auto& slot = slots_[(hash + probe) % attribute_slots];
    AttributeCounter* counter = slot.load(std::memory_order_relaxed);
    if (counter != nullptr) {
      if (Key{counter->database, counter->entity, counter->attribute} == key) return counter;
      continue;
    }
    if (counters_.size() >= max_attribute_series) return nullptr;
    AttributeCounter& added = counters_.emplace_back();
    added.database = std::get<0>(key);
    added.entity = std::get<1>(key);
    added.attribute = std::get<2>(key);
    slot.store(&added, std::memory_order_release);  // publishes the strings with it
    return &added;
  }
  return nullptr;
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
    for (std::size_t j = 0; j < tls_outcome_count; ++j)
      result.tls_handshakes[i][j] = tls_handshakes_[i][j].get();
  }
  result.rewrite_cache_hits = rewrite_cache_hits_.get();
  result.rewrite_cache_misses = rewrite_cache_misses_.get();
  result.attribute_reads_dropped = attribute_reads_dropped_.get();
  // Reused and let go before parked: a backend moving between them cannot make the gauge
  // negative.
  result.servers_reused = servers_reused_.get();
  result.servers_let_go = servers_let_go_.get();
  result.servers_parked = servers_parked_.get();
  result.upstream_connect = upstream_connect_.snapshot();
  result.rewrite_duration = rewrite_duration_.snapshot();
  for (std::size_t i = 0; i < attribute_slots; ++i) {
    if (const AttributeCounter* counter = slots_[i].load(std::memory_order_acquire)) {
      result.attribute_reads.push_back(
          {counter->database, counter->entity, counter->attribute, counter->reads.get()});
    }
  }
  std::sort(result.attribute_reads.begin(), result.attribute_reads.end(),
            [](const AttributeReads& a, const AttributeReads& b) {
              return std::tie(a.database, a.entity, a.attribute) <
                     std::tie(b.database, b.entity, b.attribute);
            });
  return result;
}

}  // namespace seedproxy::proxy
