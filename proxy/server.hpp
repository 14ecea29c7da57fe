// The listening server: I/O threads, accept loop, client limit, signals and graceful shutdown.
#pragma once

#include <memory>

#include "config/config.hpp"

namespace seedproxy::proxy {

class Server {
 public:
  explicit Server(config::Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until SIGINT/SIGTERM and the shutdown that follows; returns the process exit code.
  // Throws std::runtime_error when it cannot start (e.g. the listen address is taken).
  [[nodiscard]] int run();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace seedproxy::proxy
