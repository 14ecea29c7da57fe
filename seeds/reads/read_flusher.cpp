// The read flusher: every period, the tally's counts go to each database's registry in one
// INSERT ... ON CONFLICT per database; a database that cannot take them gets them back next
// round (for an hour at most), and old rows are pruned once a minute.
#include "seeds/reads/read_flusher.hpp"

#include <algorithm>
#include <exception>

#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {
namespace {

// SQLSTATEs meaning the registry (schema or table) is gone: the counts have nowhere to go.
bool registry_missing(const std::string& sqlstate) {
  return sqlstate == sqlstate::undefined_table || sqlstate == sqlstate::invalid_schema_name;
}

// One text field of every count, as a text[] literal.
std::string text_array(const std::vector<const CountedReads*>& counts,
                       std::string CountedReads::*field) {
  std::vector<std::string> items;
  items.reserve(counts.size());
  for (const auto* c : counts) items.push_back(c->*field);
  return text_array_literal(items);
}

std::string bigint_array(const std::vector<const CountedReads*>& counts) {
  std::string out = "{";
  for (const auto* c : counts) {
    if (out.size() > 1) out += ',';
    out += std::to_string(c->reads);
  }
  return out + "}";
}

std::uint64_t total(const std::vector<const CountedReads*>& counts) {
  std::uint64_t sum = 0;
  for (const auto* c : counts) sum += c->reads;
  return sum;
}

// Adds to this proxy's row of the current minute (the server's clock, so every proxy agrees on
// the minute). Seeds deleted meanwhile are skipped rather than failing the foreign key.
constexpr const char* write_sql = R"sql(
INSERT INTO "seedproxy"."read_counts" AS r
  ("schema_name", "table_name", "attribute_name", "minute", "instance", "reads")
SELECT c."schema_name", c."table_name", c."attribute_name", date_trunc('minute', now()), $5,
       c."reads"
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[])
  AS c("schema_name", "table_name", "attribute_name", "reads")
WHERE EXISTS (SELECT FROM "seedproxy"."seeds" s
              WHERE s."schema_name" = c."schema_name" AND s."table_name" = c."table_name"
                AND s."attribute_name" = c."attribute_name")
ON CONFLICT ("schema_name", "table_name", "attribute_name", "minute", "instance")
DO UPDATE SET "reads" = r."reads" + EXCLUDED."reads")sql";

// Rows no window looks at any more: older than their seed's window plus the minute a row spans.
constexpr const char* prune_sql = R"sql(
DELETE FROM "seedproxy"."read_counts" r
USING "seedproxy"."seeds" s
WHERE r."schema_name" = s."schema_name" AND r."table_name" = s."table_name"
  AND r."attribute_name" = s."attribute_name"
  AND r."minute" < now() - make_interval(secs => s."materialize_window_seconds")
                   - interval '1 minute')sql";

// A flush must not hang behind a lock forever (shutdown waits for the final one).
constexpr const char* statement_timeout = "10s";

std::string db_label(const std::string& name) { return "database \"" + name + "\""; }

}  // namespace

ReadFlusher::ReadFlusher(ReadTally& tally, ControlTarget target, std::string instance,
                         double flush_seconds)
    : tally_(tally),
      target_(std::move(target)),
      instance_(std::move(instance)),
      period_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(std::max(flush_seconds, 0.01)))) {
  thread_ = std::thread([this] { run(); });
}

ReadFlusher::~ReadFlusher() { stop(); }

void ReadFlusher::flush_now() noexcept {
  {
    const std::lock_guard lock(mutex_);
    wake_requested_ = true;
  }
  wake_.notify_one();
}

void ReadFlusher::release(std::string database, std::shared_ptr<Completion> done) {
  {
    const std::lock_guard lock(mutex_);
    if (!stopping_) {
      releases_.emplace_back(std::move(database), std::move(done));
      wake_requested_ = true;
      done = nullptr;
    }
  }
  if (done) done->complete();  // stopping: the connections go with the thread
  wake_.notify_one();
}

void ReadFlusher::stop() noexcept {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void ReadFlusher::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto due = Clock::now() + period_;
    wake_.wait_until(lock, due, [this] { return stopping_ || wake_requested_; });
    if (stopping_) break;
    wake_requested_ = false;
    auto releases = std::exchange(releases_, {});
    lock.unlock();
    flush_guarded(false);
    for (auto& [database, done] : releases) {
      databases_.erase(database);  // closes its connection
      done->complete();
    }
    lock.lock();
  }
  for (auto& [database, done] : releases_) done->complete();
  releases_.clear();
  lock.unlock();
  flush_guarded(true);
}

void ReadFlusher::flush_guarded(bool final) noexcept {
  try {
    flush(final);
  } catch (const std::exception& e) {
    // Out of memory at worst: this round's counts are lost, the thread goes on.
    log::error("seeds", std::string("read counts lost: ") + e.what());
  }
}

void ReadFlusher::flush(bool final) {
  const std::vector<CountedReads> taken = tally_.take();
  std::map<std::string, std::vector<const CountedReads*>> by_database;
  for (const auto& c : taken) by_database[c.database].push_back(&c);
  for (const auto& [name, counts] : by_database) {
    try {
      flush_database(name, databases_[name], counts, final);
    } catch (const std::exception& e) {
      log::error("seeds", db_label(name) + ": read counts lost: " + e.what());
    }
  }
  if (final) return;
  const auto now = Clock::now();
  for (auto& [name, d] : databases_)
    if (d.connection && d.registry && now - d.last_prune >= prune_every) prune(name, d);
  // Connections are kept only while there is something to write: a database nobody reads seeds
  // in any more is not held open (DROP DATABASE, CREATE DATABASE ... TEMPLATE need that).
  std::erase_if(databases_, [&](const auto& entry) {
    return !by_database.count(entry.first) && !entry.second.failing_since;
  });
}

bool ReadFlusher::ready(const std::string& name, Database& d) {
  if (!d.connection) {
    d.connection = std::make_unique<ControlConnection>(target_, name);
    d.registry = false;
    (void)d.connection->query("limiting how long writing read counts may take",
                              "SELECT set_config('statement_timeout', $1, false)",
                              {statement_timeout});
  }
  if (!d.registry) d.registry = registry_version(*d.connection) > 0;
  return d.registry;
}

void ReadFlusher::flush_database(const std::string& name, Database& d,
                                 const std::vector<const CountedReads*>& counts, bool final) {
  try {
    // No registry: nobody reads counts there (its seeds went with it); they are dropped quietly.
    if (!ready(name, d)) return;
    (void)d.connection->query(
        "writing read counts to \"seedproxy\".\"read_counts\"", write_sql,
        {text_array(counts, &CountedReads::schema), text_array(counts, &CountedReads::table),
         text_array(counts, &CountedReads::attribute), bigint_array(counts), instance_});
    if (d.failing_since)
      log::info("seeds", db_label(name) + ": read counts written again after " +
                             std::to_string(d.failed_rounds) + " failed round(s)");
    d.failing_since.reset();
    d.failed_rounds = 0;
    d.dropping_logged = false;
  } catch (const QueryError& e) {
    if (registry_missing(e.sqlstate())) {
      d.registry = false;  // dropped since we looked; checked again next round
      return;
    }
    failed(name, d, counts, final, e.what());
  } catch (const std::exception& e) {
    failed(name, d, counts, final, e.what());
  }
}

void ReadFlusher::failed(const std::string& name, Database& d,
                         const std::vector<const CountedReads*>& counts, bool final,
                         const std::string& why) {
  d.connection.reset();  // reconnect next round
  d.registry = false;
  const auto now = Clock::now();
  const bool first = !d.failing_since;
  if (first) d.failing_since = now;
  ++d.failed_rounds;
  if (final) {
    log::warning("seeds", db_label(name) + ": " + std::to_string(total(counts)) +
                              " read(s) not written at shutdown: " + why);
    return;
  }
  if (now - *d.failing_since >= keep_unwritten) {
    if (!d.dropping_logged)
      log::warning("seeds", db_label(name) +
                                ": read counts unwritten for an hour; dropping them until the "
                                "registry can be written again");
    d.dropping_logged = true;
    return;
  }
  if (first)
    log::warning("seeds", db_label(name) + ": " + why +
                              "; keeping the read counts and retrying every " +
                              log::seconds_text(std::chrono::duration<double>(period_).count()));
  std::vector<CountedReads> back;
  back.reserve(counts.size());
  for (const auto* c : counts) back.push_back(*c);
  tally_.restore(back);
}

void ReadFlusher::prune(const std::string& name, Database& d) {
  d.last_prune = Clock::now();
  try {
    (void)d.connection->query("deleting read counts older than every window", prune_sql);
  } catch (const std::exception& e) {
    // The next write reconnects and logs if the database is really gone.
    log::debug("seeds", db_label(name) + ": " + e.what());
    d.connection.reset();
    d.registry = false;
  }
}

}  // namespace seedproxy::seeds
