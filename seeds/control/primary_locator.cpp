// Finding the primary among upstream.hosts: a held connection asked pg_is_in_recovery(), and a
// new libpq read-write connection (which tries every host in order) when that fails.
#include "seeds/control/primary_locator.hpp"

#include <chrono>
#include <stdexcept>

#include "common/log.hpp"

namespace seedproxy::seeds {

PrimaryLocator::PrimaryLocator(ControlTarget target, std::string database, double check_seconds)
    : target_(std::move(target)), database_(std::move(database)), check_seconds_(check_seconds) {
  target_.target_session_attrs = "read-write";
}

PrimaryLocator::~PrimaryLocator() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void PrimaryLocator::start() {
  check();
  thread_ = std::thread([this] { run(); });
}

std::uint64_t PrimaryLocator::suspect() noexcept {
  std::uint64_t target = 0;
  {
    std::lock_guard lock(mutex_);
    suspected_ = true;
    // A check under way may have asked before what the caller saw: the one after it counts.
    target = checks_.value() + (checking_ ? 2 : 1);
  }
  wake_.notify_one();
  return target;
}

void PrimaryLocator::run() {
  const auto interval = std::chrono::duration<double>(check_seconds_);
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval, [this] { return stopping_ || suspected_; });
    if (stopping_) break;
    suspected_ = false;
    checking_ = true;
    lock.unlock();
    check();
    lock.lock();
    checking_ = false;
    checks_.advance_to(checks_.value() + 1);
  }
}

std::size_t PrimaryLocator::host_of(const ControlConnection& connection) const {
  // libpq reports the host and port entry it connected through, as they were given.
  const std::string host = PQhost(connection.native());
  const std::string port = PQport(connection.native());
  for (std::size_t i = 0; i < target_.hosts.size(); ++i)
    if (target_.hosts[i].host == host && std::to_string(target_.hosts[i].port) == port) return i;
  return 0;
}

void PrimaryLocator::check() {
  if (connection_) {
    try {
      const auto result = connection_->query("check that the upstream is still the primary",
                                             "SELECT pg_catalog.pg_is_in_recovery()");
      if (text_at(result, 0, 0) == "f") return;  // still the primary: nothing moved
      log::warning("upstream", config::endpoint_text(target_.hosts[connected_host_]) +
                                   " is in recovery now (no longer the primary)");
    } catch (const std::exception& error) {
      log::warning("upstream", "lost the primary " +
                                   config::endpoint_text(target_.hosts[connected_host_]) + ": " +
                                   error.what());
    }
    connection_.reset();
  }
  try {
    // A primary that vanished into a partition fails the next check instead of blocking it.
    const int user_timeout_ms = static_cast<int>(target_.connect_timeout_seconds * 1000);
    connection_ = std::make_unique<ControlConnection>(target_, database_, "seedproxy primary check",
                                                      user_timeout_ms);
  } catch (const std::exception& error) {
    if (!warned_none_)
      log::warning("upstream", std::string("no upstream host accepts writes yet: ") + error.what());
    warned_none_ = true;
    return;
  }
  warned_none_ = false;
  connected_host_ = host_of(*connection_);
  const std::size_t before = primary_.exchange(connected_host_, std::memory_order_relaxed);
  if (before != connected_host_) changes_.fetch_add(1, std::memory_order_relaxed);
  log::info("upstream", "primary is " + config::endpoint_text(target_.hosts[connected_host_]) +
                            (before != connected_host_
                                 ? " (was " + config::endpoint_text(target_.hosts[before]) + ")"
                                 : ""));
}

}  // namespace seedproxy::seeds
