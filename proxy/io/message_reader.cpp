// One typed message at a time: header, length check, body.
#include "proxy/io/message_reader.hpp"

namespace seedproxy::proxy {

namespace asio = boost::asio;

asio::awaitable<ReadMessage> read_message(Stream& stream, std::uint32_t max_length) {
  ReadMessage out;
  out.bytes.resize(protocol::message_header_size);
  out.ec = co_await stream.read_exact(out.bytes);
  if (out.ec) co_return out;
  const auto header = protocol::decode_message_header(out.bytes, max_length);
  if (header.status == protocol::Status::error) {
    out.error = header.error;
    out.type = static_cast<char>(out.bytes[0]);
    co_return out;
  }
  out.type = header.header.type;
  out.bytes.resize(header.header.total());
  out.ec = co_await stream.read_exact(std::span(out.bytes).subspan(protocol::message_header_size));
  co_return out;
}

}  // namespace seedproxy::proxy
