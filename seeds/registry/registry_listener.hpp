// A database's registry connection: LISTENs on the registry channel, and is the one connection
// the registry watcher reads that database's registry and catalog over and renews this proxy's
// lease on. The control thread polls its socket together with the others and drains
// notifications without ever blocking on it.
#pragma once

#include <string>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

class RegistryListener {
 public:
  // Connects to `database` and LISTENs on the registry channel; throws std::runtime_error.
  // `tcp_user_timeout_ms` bounds a query into a network partition (see connect_to).
  RegistryListener(const ControlTarget& target, const std::string& database,
                   int tcp_user_timeout_ms);
  RegistryListener(const RegistryListener&) = delete;
  RegistryListener& operator=(const RegistryListener&) = delete;

  // The socket to poll for reading.
  [[nodiscard]] int socket() const noexcept;
  // Reads what arrived without blocking. Returns true when at least one registry notification
  // came in; throws std::runtime_error when the connection is lost.
  [[nodiscard]] bool drain();
  // For queries between drains (notifications that arrive meanwhile wait for the next drain).
  [[nodiscard]] ControlConnection& connection() noexcept { return connection_; }

 private:
  ControlConnection connection_;
  std::string database_;
};

}  // namespace seedproxy::seeds
