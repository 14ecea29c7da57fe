// Test scaffolding for the end-to-end authentication check: a blocking TCP stream, optionally in
// TLS, with PostgreSQL framing. Not the proxy's I/O (that is Asio); just enough to drive libpq
// and PostgreSQL through the auth core from one small program.
#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::test {

using ByteVector = std::vector<std::byte>;

struct Message {
  char type = 0;
  ByteVector body;
};

class BlockingStream {
 public:
  explicit BlockingStream(int fd) noexcept : fd_(fd) {}
  ~BlockingStream();
  BlockingStream(const BlockingStream&) = delete;
  BlockingStream& operator=(const BlockingStream&) = delete;

  [[nodiscard]] bool tls_connect(SSL_CTX* context, std::string& error);
  [[nodiscard]] bool tls_accept(SSL_CTX* context, std::string& error);
  [[nodiscard]] bool tls() const noexcept { return ssl_ != nullptr; }

  [[nodiscard]] bool write_all(std::span<const std::byte> bytes);
  [[nodiscard]] bool read_exact(std::span<std::byte> out);
  // A startup-shaped packet: Int32 length (self included), then the rest, returned whole.
  [[nodiscard]] std::optional<ByteVector> read_startup_packet();
  // A typed message: Byte1 type, Int32 length; the body at most 1 MiB.
  [[nodiscard]] std::optional<Message> read_message();
  [[nodiscard]] bool write_message(char type, std::span<const std::byte> body);

  // DER of the certificate this side presented (server) or received (client); empty without TLS.
  [[nodiscard]] ByteVector own_certificate_der() const;
  [[nodiscard]] ByteVector peer_certificate_der() const;
  [[nodiscard]] std::string tls_description() const;

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

// A listening socket on 127.0.0.1 and a free port; -1 on failure.
[[nodiscard]] int listen_on_loopback(std::uint16_t& port);
[[nodiscard]] int accept_one(int listener);
[[nodiscard]] int connect_to(const std::string& host, std::uint16_t port);

void put_u32(ByteVector& out, std::uint32_t value);
void put_cstring(ByteVector& out, std::string_view text);
[[nodiscard]] std::uint32_t get_u32(std::span<const std::byte> bytes, std::size_t at);
[[nodiscard]] std::span<const std::byte> bytes_of(std::string_view text);
[[nodiscard]] std::string text_of(std::span<const std::byte> bytes);

}  // namespace seedproxy::test
