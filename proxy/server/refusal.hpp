// Turning a client away before a session starts (limits.max_clients): the FATAL it is owed, after
// answering an SSLRequest or GSSENCRequest 'N' first, so a client with sslmode=prefer reads the
// real reason instead of a broken TLS handshake.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <string_view>

#include "proxy/io/context_socket.hpp"

namespace seedproxy::proxy {

// Waits at most `patience_seconds` for the client's first packet; never reads a startup packet
// body. No TLS handshake is run for a refused client: under overload that is the costly part.
[[nodiscard]] boost::asio::awaitable<void> refuse_client(ContextSocket socket,
                                                         std::string_view sqlstate,
                                                         std::string message,
                                                         double patience_seconds);

}  // namespace seedproxy::proxy
