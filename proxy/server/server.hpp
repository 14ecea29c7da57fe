// The listening server: I/O threads, accept loop, client limit, signals, hot reload, the admin
// console's view of the proxy, and graceful shutdown.
#pragma once

#include <filesystem>
#include <memory>

#include "config/config.hpp"

namespace seedproxy::proxy {

class Server {
 public:
  // `config_path` is the file `config` was read from; reloads read it again.
  Server(config::Config config, std::filesystem::path config_path);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until SIGINT/SIGTERM and the shutdown that follows; returns the process exit code.
  // SIGHUP reloads the configuration.
  // Throws std::runtime_error when it cannot start (e.g. the listen address is taken).
  [[nodiscard]] int run();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace seedproxy::proxy
