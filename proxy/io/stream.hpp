// A client or server connection as the session sees it: a non-blocking TCP socket, in plain text
// or under TLS (OpenSSL driven directly over the socket, Asio for readiness). The relay pumps wait
// by reading: Asio's own async_read_some in plain text, tls_receive under TLS.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <tuple>

namespace seedproxy::proxy {

// What a TLS handshake came to: `ok`, or why not (OpenSSL's reason, and for a certificate that
// did not verify, X509's).
struct TlsHandshake {
  bool ok = false;
  bool certificate_failed = false;  // the peer's certificate (or its name) did not verify
  bool closed = false;              // the peer went away mid-handshake
  std::string error;
};

class Stream {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  explicit Stream(tcp::socket socket);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  [[nodiscard]] tcp::socket& socket() noexcept { return socket_; }
  // The socket's executor, so code written against a tcp::socket keeps reading naturally.
  [[nodiscard]] tcp::socket::executor_type get_executor() noexcept {
    return socket_.get_executor();
  }
  [[nodiscard]] bool tls() const noexcept { return ssl_ != nullptr; }
  [[nodiscard]] SSL* ssl() const noexcept { return ssl_; }

  // Non-blocking: the bytes read, or ec (would_block when nothing is ready, eof at the end).
  [[nodiscard]] std::size_t read_some(std::span<std::byte> out, error_code& ec) {
    if (!ssl_) [[likely]]
      return socket_.read_some(boost::asio::buffer(out.data(), out.size()), ec);
    return tls_read(out, ec);
  }
  // Non-blocking: the bytes written (maybe fewer), or ec (would_block when the socket is full).
  [[nodiscard]] std::size_t write_some(std::span<const std::byte> bytes, error_code& ec) {
    if (!ssl_) [[likely]]
      return socket_.write_some(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return tls_write(bytes, ec);
  }
  // True when TLS holds decrypted bytes already: read_some answers without waiting.
  [[nodiscard]] bool buffered() const noexcept { return ssl_ && SSL_has_pending(ssl_) == 1; }
  // Waits until read_some may make progress (for TLS: whatever the last read wanted).
  template <class Token>
  auto async_wait_readable(Token&& token) {
    return socket_.async_wait(read_wants_write_ ? tcp::socket::wait_write : tcp::socket::wait_read,
                              std::forward<Token>(token));
  }
  template <class Token>
  auto async_wait_writable(Token&& token) {
    return socket_.async_wait(write_wants_read_ ? tcp::socket::wait_read : tcp::socket::wait_write,
                              std::forward<Token>(token));
  }

  // Under TLS: the next decrypted bytes, waiting for the socket as OpenSSL asks (the plain path
  // reads with socket().async_read_some, which tries at once and waits without re-arming epoll).
  [[nodiscard]] boost::asio::awaitable<std::tuple<error_code, std::size_t>> tls_receive(
      std::span<std::byte> out);

  // Whole-buffer helpers for the low-volume conversations (startup, login, admin console).
  [[nodiscard]] boost::asio::awaitable<error_code> read_exact(std::span<std::byte> out);
  [[nodiscard]] boost::asio::awaitable<error_code> write_all(std::span<const std::byte> bytes);

  // TLS handshakes on this connection; afterwards every read and write is encrypted. A failed
  // handshake leaves the stream unusable: close it.
  [[nodiscard]] boost::asio::awaitable<TlsHandshake> accept_tls(SSL_CTX* context);
  // `verify_name`: the host name or IP address the certificate must carry (empty: none checked).
  [[nodiscard]] boost::asio::awaitable<TlsHandshake> connect_tls(SSL_CTX* context,
                                                                 const std::string& server_name,
                                                                 bool verify_name);

  // "TLSv1.3", the cipher's name; empty without TLS.
  [[nodiscard]] std::string tls_version() const;
  [[nodiscard]] std::string tls_cipher() const;
  // The ALPN protocol the handshake agreed on; empty when none.
  [[nodiscard]] std::string alpn() const;

  void cancel() noexcept;
  // Sends close_notify when TLS is up (best effort, never blocks), then closes the socket.
  void close() noexcept;
  // Closes, and forgets TLS: the socket may connect again (to another host).
  void reset() noexcept;

 private:
  std::size_t tls_read(std::span<std::byte> out, error_code& ec);
  std::size_t tls_write(std::span<const std::byte> bytes, error_code& ec);
  boost::asio::awaitable<TlsHandshake> handshake();

  tcp::socket socket_;
  SSL* ssl_ = nullptr;
  bool read_wants_write_ = false;  // the last SSL_read asked to wait for writability
  bool write_wants_read_ = false;  // the last SSL_write asked to wait for readability
};

}  // namespace seedproxy::proxy
