// Moving an accepted connection from the accepting I/O thread to the one that will serve it, so
// that its descriptor is registered with, used by and deregistered from that thread's reactor on
// that thread alone (the workers' contexts run without the reactor's per-descriptor lock).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>

#include "proxy/io/context_socket.hpp"

namespace seedproxy::proxy {

// Made on the accepting thread, taken on the serving thread. A handoff never taken (its context
// shut down first) closes the descriptor.
class SocketHandoff {
 public:
  // On the thread that runs `socket`'s context: when `to` is another context, the descriptor
  // leaves this context's reactor here, on its own thread.
  SocketHandoff(ContextSocket socket, boost::asio::io_context& to);
  SocketHandoff(SocketHandoff&& other) noexcept;
  SocketHandoff& operator=(SocketHandoff&&) = delete;
  SocketHandoff(const SocketHandoff&) = delete;
  SocketHandoff& operator=(const SocketHandoff&) = delete;
  ~SocketHandoff();

  // On the thread that runs `to`: the connection as a socket of `to`, registered there. A socket
  // that cannot be registered (epoll_ctl failing) comes back closed; the session's first read
  // then fails and says so.
  [[nodiscard]] ContextSocket take();

 private:
  boost::asio::io_context* to_;
  std::optional<ContextSocket> same_;  // already a socket of `to`
  boost::asio::ip::tcp protocol_ = boost::asio::ip::tcp::v4();
  int descriptor_ = -1;  // released from the accepting reactor, not yet registered
};

}  // namespace seedproxy::proxy
