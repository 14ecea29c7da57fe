// The TCP socket type of every client and server connection: bound to its io_context's own
// executor (8 bytes) rather than the polymorphic any_io_executor (56), since each session holds
// two and a proxy holds thousands of idle sessions. Sockets are accepted as this type
// (async_accept given the context), so no descriptor is re-registered to convert one.
#pragma once

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace seedproxy::proxy {

using ContextSocket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

}  // namespace seedproxy::proxy
