// The batch's lock-wait watch (see lock_wait_watch.hpp).
#include "seeds/materialize/lock_wait_watch.hpp"

#include <algorithm>
#include <cstdlib>

#include "common/log.hpp"

namespace seedproxy::seeds {

namespace {

using Clock = std::chrono::steady_clock;

// The sessions waiting right now on a lock backend $1 holds, the longest wait, and — when that
// is longer than $2 ms — the cancel of $1's running statement (CASE, not AND: `NULL AND f()` still
// calls f). pg_blocking_pids runs only for waiting locks. A cancel that reaches the backend just
// after the batch's UPDATE ended fails its next statement instead, which is retried like any busy
// batch: every batch is idempotent.
constexpr const char* look_sql =
    "WITH \"w\" AS (SELECT pg_catalog.date_part('epoch', "
    "pg_catalog.clock_timestamp() - l.waitstart) * 1000 AS ms "
    "FROM pg_catalog.pg_locks l WHERE NOT l.granted AND l.waitstart IS NOT NULL "
    "AND l.pid <> $1::pg_catalog.int4 "
    "AND $1::pg_catalog.int4 = ANY (pg_catalog.pg_blocking_pids(l.pid))) "
    "SELECT pg_catalog.count(*), COALESCE(pg_catalog.max(ms), 0), "
    "CASE WHEN pg_catalog.max(ms) > $2::pg_catalog.float8 "
    "THEN pg_catalog.pg_cancel_backend($1::pg_catalog.int4) ELSE false END FROM \"w\"";

}  // namespace

LockWaitWatch::LockWaitWatch(Connect connect, std::chrono::milliseconds limit,
                             std::chrono::milliseconds interval)
    : connect_(std::move(connect)), limit_(limit), interval_(interval) {
  thread_ = std::thread([this] { loop(); });
}

LockWaitWatch::~LockWaitWatch() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LockWaitWatch::arm(int pid) {
  {
    std::lock_guard lock(mutex_);
    pid_ = pid;
    seen_ = {};
  }
  wake_.notify_all();
}

ApplicationWaits LockWaitWatch::disarm() {
  std::unique_lock lock(mutex_);
  pid_ = 0;
  wake_.wait(lock, [&] { return !looking_; });
  return seen_;
}

std::string LockWaitWatch::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

void LockWaitWatch::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || pid_ != 0; });
    if (stopping_) return;
    const int pid = pid_;
    looking_ = true;
    lock.unlock();
    look(pid);
    lock.lock();
    looking_ = false;
    wake_.notify_all();
    wake_.wait_for(lock, interval_, [&] { return stopping_ || pid_ != pid; });
  }
}

void LockWaitWatch::look(int pid) {
  std::string problem;
  ApplicationWaits now;
  try {
    if (!connection_ || !connection_->healthy()) {
      if (Clock::now() < next_connect_) return;
      next_connect_ = Clock::now() + std::chrono::seconds(1);  // not once per interval when down
      connection_ = connect_();
      // A look must never hold up the batch it watches for long (disarm waits for it).
      (void)connection_->query("bounding the lock watch's statements",
                               "SELECT pg_catalog.set_config('statement_timeout', '1000', false)");
    }
    const auto result = connection_->query("watching for sessions that wait on the batch", look_sql,
                                           {std::to_string(pid), std::to_string(limit_.count())});
    now.waiters = static_cast<std::uint32_t>(count_at(result, 0, 0));
    now.longest = std::chrono::milliseconds(
        static_cast<std::int64_t>(std::strtod(PQgetvalue(result.get(), 0, 1), nullptr)));
    now.cancelled = PQgetvalue(result.get(), 0, 2)[0] == 't';
  } catch (const std::exception& error) {
    problem = error.what();
    connection_.reset();
  }
  std::lock_guard lock(mutex_);
  if (!problem.empty() && problem != problem_)
    log::warning("materialize",
                 "the batches' lock watch cannot look at pg_locks (batches still run, but an "
                 "application waiting on one is not noticed): " +
                     problem);
  problem_ = problem;
  if (pid_ != pid) return;  // disarmed meanwhile: this look belongs to no batch
  seen_.waiters = std::max(seen_.waiters, now.waiters);
  seen_.longest = std::max(seen_.longest, now.longest);
  seen_.cancelled = seen_.cancelled || now.cancelled;
}

}  // namespace seedproxy::seeds
