// Blocking sockets, OpenSSL streams and PostgreSQL framing for the end-to-end auth program.
#include "tests/proxy/auth/e2e/blocking_stream.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace seedproxy::test {
namespace {

std::string openssl_error() {
  char buffer[256] = "unknown OpenSSL error";
  if (const auto code = ERR_get_error()) ERR_error_string_n(code, buffer, sizeof buffer);
  return buffer;
}

ByteVector der_of(X509* cert) {
  if (cert == nullptr) return {};
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert, &der);
  if (length <= 0) return {};
  ByteVector out(reinterpret_cast<std::byte*>(der), reinterpret_cast<std::byte*>(der) + length);
  OPENSSL_free(der);
  return out;
}

}  // namespace

BlockingStream::~BlockingStream() {
  if (ssl_ != nullptr) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (fd_ >= 0) ::close(fd_);
}

bool BlockingStream::tls_connect(SSL_CTX* context, std::string& error) {
  ssl_ = SSL_new(context);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1 || SSL_connect(ssl_) != 1) {
    error = "TLS handshake with the server failed: " + openssl_error();
    return false;
  }
  return true;
}

bool BlockingStream::tls_accept(SSL_CTX* context, std::string& error) {
  ssl_ = SSL_new(context);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1 || SSL_accept(ssl_) != 1) {
    error = "TLS handshake with the client failed: " + openssl_error();
    return false;
  }
  return true;
}

bool BlockingStream::write_all(std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const int chunk = static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 20));
    const long written = ssl_ != nullptr ? SSL_write(ssl_, bytes.data(), chunk)
                                         : ::send(fd_, bytes.data(), chunk, MSG_NOSIGNAL);
    if (written <= 0) return false;
    bytes = bytes.subspan(static_cast<std::size_t>(written));
  }
  return true;
}

bool BlockingStream::read_exact(std::span<std::byte> out) {
  while (!out.empty()) {
    const int chunk = static_cast<int>(std::min<std::size_t>(out.size(), 1 << 20));
    const long got =
        ssl_ != nullptr ? SSL_read(ssl_, out.data(), chunk) : ::recv(fd_, out.data(), chunk, 0);
    if (got <= 0) return false;
    out = out.subspan(static_cast<std::size_t>(got));
  }
  return true;
}

std::optional<ByteVector> BlockingStream::read_startup_packet() {
  ByteVector packet(4);
  if (!read_exact(packet)) return std::nullopt;
  const auto length = get_u32(packet, 0);
  if (length < 8 || length > 10000) return std::nullopt;
  packet.resize(length);
  if (!read_exact(std::span(packet).subspan(4))) return std::nullopt;
  return packet;
}

std::optional<Message> BlockingStream::read_message() {
  ByteVector header(5);
  if (!read_exact(header)) return std::nullopt;
  const auto length = get_u32(header, 1);
  if (length < 4 || length > (1u << 20) + 4) return std::nullopt;
  Message message{static_cast<char>(header[0]), ByteVector(length - 4)};
  if (!read_exact(message.body)) return std::nullopt;
  return message;
}

bool BlockingStream::write_message(char type, std::span<const std::byte> body) {
  ByteVector out{static_cast<std::byte>(type)};
  put_u32(out, static_cast<std::uint32_t>(body.size() + 4));
  out.insert(out.end(), body.begin(), body.end());
  return write_all(out);
}

ByteVector BlockingStream::own_certificate_der() const {
  return ssl_ != nullptr ? der_of(SSL_get_certificate(ssl_)) : ByteVector{};
}

ByteVector BlockingStream::peer_certificate_der() const {
  return ssl_ != nullptr ? der_of(SSL_get0_peer_certificate(ssl_)) : ByteVector{};
}

std::string BlockingStream::tls_description() const {
  if (ssl_ == nullptr) return "plain";
  return std::string(SSL_get_version(ssl_)) + " " + SSL_get_cipher_name(ssl_);
}

int listen_on_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(fd, 4) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) != 0)
    return -1;
  port = ntohs(address.sin_port);
  return fd;
}

int accept_one(int listener) { return ::accept(listener, nullptr, nullptr); }

int connect_to(const std::string& host, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  if (fd < 0 || ::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

void put_u32(ByteVector& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<std::byte>(value >> shift));
}

void put_cstring(ByteVector& out, std::string_view text) {
  const auto bytes = bytes_of(text);
  out.insert(out.end(), bytes.begin(), bytes.end());
  out.push_back(std::byte{0});
}

std::uint32_t get_u32(std::span<const std::byte> bytes, std::size_t at) {
  std::uint32_t value = 0;
  for (std::size_t i = 0; i < 4; ++i)
    value = (value << 8) | std::to_integer<std::uint32_t>(bytes[at + i]);
  return value;
}

std::span<const std::byte> bytes_of(std::string_view text) {
  return {reinterpret_cast<const std::byte*>(text.data()), text.size()};
}

std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace seedproxy::test
