// Server connections kept between clients on one I/O thread (config server_pool, PgBouncer's
// session pooling): a backend whose client left it idle, reset, waits here for the next client
// of the same user, database and startup parameters, who then skips PostgreSQL's backend start.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/io/stream.hpp"
#include "proxy/observe/observer.hpp"

namespace seedproxy::proxy {

class ServerPool {
 public:
  using Clock = std::chrono::steady_clock;
  // A logged-in backend and what its login told the client after AuthenticationOk
  // (ParameterStatus..., BackendKeyData, ReadyForQuery), which the next client hears again:
  // the reset query brings the parameters back to those of the login.
  struct Server {
    Stream stream;
    std::vector<std::byte> login;
    std::uint32_t backend_pid = 0;
    Clock::time_point born;  // connected
    std::string user, database;
  };
  // One parked backend, as SHOW POOLS counts them.
  struct ParkedInfo {
    std::string user, database;
    std::uint32_t backend_pid = 0;
    double parked_seconds = 0;
    bool tls = false;
  };
  // Why a backend was not kept, for the session's log line; nullptr when it was.
  using Refusal = const char*;

  ServerPool(boost::asio::io_context::executor_type executor, Observer& observer);
  ~ServerPool();
  ServerPool(const ServerPool&) = delete;
  ServerPool& operator=(const ServerPool&) = delete;

  // The backend parked longest ago under `key` that is still usable, or nullopt. A backend that
  // closed or sent anything while parked (PostgreSQL ended it) is closed and passed over.
  [[nodiscard]] std::optional<Server> take(const std::string& key,
                                           const config::ServerPool& settings);
  // Keeps `server` under `key` for settings.idle_timeout_seconds; nullptr when kept, else why
  // not (it is then closed).
  Refusal park(std::string key, Server server, const config::ServerPool& settings);
  [[nodiscard]] std::size_t size() const noexcept { return parked_.size(); }
  [[nodiscard]] std::vector<ParkedInfo> describe() const;
  // Lets go of every parked backend of `database` (admin KILL).
  void drop_database(const std::string& database) noexcept;
  // Lets go of every parked backend (shutdown).
  void clear() noexcept;

 private:
  // Whether a parked connection can still be handed out: open, nothing arrived while parked.
  [[nodiscard]] static bool usable(Stream& stream) noexcept;
  struct Parked {
    std::string key;
    Server server;
    Clock::time_point since;
    Clock::time_point until;  // let go then, unused
  };
  // Tells the backend to end, closes it and counts it.
  void let_go(Stream& stream) noexcept;
  // Closes what is past its time or no longer usable, and waits for the next deadline.
  void sweep();
  void arm();

  std::list<Parked> parked_;  // in the order they were parked
  boost::asio::steady_timer timer_;
  Clock::time_point armed_for_{};  // the timer's expiry while armed; the epoch while not
  Observer& observer_;
  // The timer's handler checks this before touching the pool (it may run after the pool is gone
  // when the context outlives it).
  std::shared_ptr<ServerPool*> self_;
};

// The key a backend is parked under: the client's startup packet (user, database and every
// parameter, in the order sent).
[[nodiscard]] std::string server_pool_key(const std::vector<std::byte>& startup);

}  // namespace seedproxy::proxy
