// One typed message at a time: header, length check, body.
#include "proxy/io/message_reader.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace seedproxy::proxy {

namespace asio = boost::asio;

asio::awaitable<ReadMessage> read_message(asio::ip::tcp::socket& socket, std::uint32_t max_length) {
  constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
  ReadMessage out;
  out.bytes.resize(protocol::message_header_size);
  auto [ec, n] = co_await asio::async_read(socket, asio::buffer(out.bytes), use_tuple);
  if (ec) {
    out.ec = ec;
    co_return out;
  }
  const auto header = protocol::decode_message_header(out.bytes, max_length);
  if (header.status == protocol::Status::error) {
    out.error = header.error;
    out.type = static_cast<char>(out.bytes[0]);
    co_return out;
  }
  out.type = header.header.type;
  out.bytes.resize(header.header.total());
  auto [body_ec, body_n] =
      co_await asio::async_read(socket,
                                asio::buffer(out.bytes.data() + protocol::message_header_size,
                                             out.bytes.size() - protocol::message_header_size),
                                use_tuple);
  out.ec = body_ec;
  co_return out;
}

}  // namespace seedproxy::proxy
