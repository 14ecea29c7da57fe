// SocketHandoff: release on the accepting thread, assign on the serving thread.
#include "proxy/io/socket_handoff.hpp"

#include <unistd.h>

#include <utility>

namespace seedproxy::proxy {

namespace asio = boost::asio;
using boost::system::error_code;

SocketHandoff::SocketHandoff(ContextSocket socket, asio::io_context& to) : to_(&to) {
  if (&socket.get_executor().context() == &to) {
    same_.emplace(std::move(socket));
    return;
  }
  error_code ec;
  const auto local = socket.local_endpoint(ec);
  protocol_ = ec ? asio::ip::tcp::v4() : local.protocol();
  // release() deregisters the descriptor from the accepting reactor, on this (its) thread.
  descriptor_ = socket.release(ec);
  if (ec) descriptor_ = -1;
}

SocketHandoff::SocketHandoff(SocketHandoff&& other) noexcept
    : to_(other.to_),
      same_(std::move(other.same_)),
      protocol_(other.protocol_),
      descriptor_(std::exchange(other.descriptor_, -1)) {
  other.same_.reset();
}

SocketHandoff::~SocketHandoff() {
  if (descriptor_ >= 0) ::close(descriptor_);
}

ContextSocket SocketHandoff::take() {
  if (same_) {
    ContextSocket socket(std::move(*same_));
    same_.reset();
    return socket;
  }
  ContextSocket socket(*to_);
  if (descriptor_ < 0) return socket;
  error_code ec;
  socket.assign(protocol_, descriptor_, ec);  // registers with `to`'s reactor, on its thread
  if (ec) ::close(descriptor_);
  descriptor_ = -1;
  return socket;
}

}  // namespace seedproxy::proxy
