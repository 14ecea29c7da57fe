// A LISTEN connection on the registry channel of one database: the control thread polls its
// socket together with the others and drains notifications without ever blocking on it.
#pragma once

#include <libpq-fe.h>

#include <string>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

class RegistryListener {
 public:
  // Connects to `database` and LISTENs on the registry channel; throws std::runtime_error.
  RegistryListener(const ControlTarget& target, const std::string& database);
  RegistryListener(const RegistryListener&) = delete;
  RegistryListener& operator=(const RegistryListener&) = delete;
  ~RegistryListener();

  // The socket to poll for reading.
  [[nodiscard]] int socket() const noexcept;
  // Reads what arrived without blocking. Returns true when at least one registry notification
  // came in; throws std::runtime_error when the connection is lost.
  [[nodiscard]] bool drain();

 private:
  PGconn* connection_ = nullptr;
  std::string database_;
};

}  // namespace seedproxy::seeds
