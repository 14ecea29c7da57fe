// Reading one whole typed message from a socket, length checked before the body is allocated;
// for the low-volume conversations the proxy holds itself (admin login and console).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "proxy/io/stream.hpp"
#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::proxy {

struct ReadMessage {
  boost::system::error_code ec;                             // the socket failed or closed
  protocol::FrameError error = protocol::FrameError::none;  // nonsense length
  char type = 0;
  std::vector<std::byte> bytes;  // the whole message, header included
  [[nodiscard]] protocol::Bytes body() const noexcept {
    return protocol::Bytes(bytes).subspan(protocol::message_header_size);
  }
};

[[nodiscard]] boost::asio::awaitable<ReadMessage> read_message(Stream& stream,
                                                               std::uint32_t max_length);

}  // namespace seedproxy::proxy
