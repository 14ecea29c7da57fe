// SSLRequest to PostgreSQL and what its one-byte answer allows.
#include "proxy/tls/upstream_tls.hpp"

#include <array>

namespace seedproxy::proxy {

namespace asio = boost::asio;

asio::awaitable<UpstreamTls> negotiate_upstream_tls(Stream& server, const UpstreamTlsContext& tls,
                                                    const std::string& server_name) {
  UpstreamTls out;
  if (tls.mode == config::SslMode::disable || !tls.context) {
    out.ok = true;
    co_return out;
  }
  // Int32 8, Int32 80877103: the SSLRequest code.
  constexpr std::array<std::byte, 8> ssl_request{std::byte{0},    std::byte{0},    std::byte{0},
                                                 std::byte{8},    std::byte{0x04}, std::byte{0xd2},
                                                 std::byte{0x16}, std::byte{0x2f}};
  const auto write_ec = co_await server.write_all(ssl_request);
  if (write_ec) {
    out.error = "could not send SSL negotiation packet: " + write_ec.message();
    co_return out;
  }
  std::array<std::byte, 1> answer{};
  const auto read_ec = co_await server.read_exact(answer);
  if (read_ec) {
    out.error = "server closed the connection during SSL negotiation: " + read_ec.message();
    co_return out;
  }
  if (answer[0] == std::byte{'N'}) {
    if (tls.required()) {
      out.error = "server does not support SSL, but SSL was required (server_tls.sslmode " +
                  std::string(config::to_string(tls.mode)) + ")";
      co_return out;
    }
    out.ok = true;  // prefer: plain text, as libpq would
    co_return out;
  }
  if (answer[0] != std::byte{'S'}) {
    out.error = "received invalid response to SSL negotiation: " +
                std::to_string(static_cast<int>(answer[0]));
    co_return out;
  }
  const auto handshake =
      co_await server.connect_tls(tls.context.get(), server_name, tls.verify_name());
  if (!handshake.ok) {
    out.verification_failed = handshake.certificate_failed;
    out.error = "TLS handshake with the server failed: " + handshake.error;
    co_return out;
  }
  out.ok = true;
  out.encrypted = true;
  co_return out;
}

}  // namespace seedproxy::proxy
