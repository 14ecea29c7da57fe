// A client or server connection as the session sees it: a non-blocking TCP socket, in plain text
// or under TLS. Under TLS, OpenSSL reads ciphertext from a buffer the stream fills with the
// socket's drained read (so waiting costs what it costs in plain text) and writes straight to the
// socket; the relay pumps wait in async_read_drained in plain text, in tls_receive under TLS.
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>

#include "proxy/io/drained_read.hpp"

namespace seedproxy::proxy {

// What a TLS handshake came to: `ok`, or why not (OpenSSL's reason, and for a certificate that
// did not verify, X509's).
struct TlsHandshake {
  bool ok = false;
  bool certificate_failed = false;  // the peer's certificate (or its name) did not verify
  bool closed = false;              // the peer went away mid-handshake
  std::string error;
};

// The TLS side of a stream (stream.cpp): the SSL object, its I/O glue and the ciphertext read
// from the socket that OpenSSL has not taken yet. Only TLS connections allocate one.
struct TlsChannel;

class Stream {
 public:
  using tcp = boost::asio::ip::tcp;
  using error_code = boost::system::error_code;

  explicit Stream(ContextSocket socket);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  // Moves the connection, TLS state included (a server connection kept for the next client).
  // Nothing of `other` may be pending: its operations would complete on the moved socket.
  Stream(Stream&& other) noexcept;
  Stream& operator=(Stream&& other) noexcept;

  [[nodiscard]] RelaySocket& socket() noexcept { return socket_; }
  // The socket's executor, so code written against a tcp::socket keeps reading naturally.
  [[nodiscard]] ContextSocket::executor_type get_executor() noexcept {
    return socket_.get_executor();
  }
  [[nodiscard]] bool tls() const noexcept { return tls_ != nullptr; }
  [[nodiscard]] SSL* ssl() const noexcept;

  // Non-blocking: the bytes read, or ec (would_block when nothing is ready, eof at the end).
  // Under TLS it decrypts only what was already read from the socket: tls_receive waits.
  [[nodiscard]] std::size_t read_some(std::span<std::byte> out, error_code& ec) {
    if (!tls_) [[likely]]
      return socket_.read_some(boost::asio::buffer(out.data(), out.size()), ec);
    return tls_read(out, ec);
  }
  // Non-blocking: the bytes written (maybe fewer), or ec (would_block when the socket is full).
  [[nodiscard]] std::size_t write_some(std::span<const std::byte> bytes, error_code& ec) {
    if (!tls_) [[likely]]
      return socket_.write_some(boost::asio::buffer(bytes.data(), bytes.size()), ec);
    return tls_write(bytes, ec);
  }
  // Under TLS: true when decrypted bytes wait in OpenSSL or ciphertext read from the socket has
  // not been decrypted yet, so read_some may answer without the socket.
  [[nodiscard]] bool buffered() const noexcept;

  // Under TLS: the next decrypted bytes (as many as are there, up to out.size()), reading the
  // socket with async_read_drained when OpenSSL needs more (a read of whole records is trusted),
  // waiting without re-arming epoll, as the plain-text pumps do.
  [[nodiscard]] boost::asio::awaitable<std::tuple<error_code, std::size_t>> tls_receive(
      std::span<std::byte> out);
  // The same wait for a reader driven by completion handlers (the relay pumps): after read_some
  // answered would_block under TLS, waits for what OpenSSL asked for (room to write, or more
  // ciphertext, read into the channel) and calls handler(ec); ec only when the wait itself
  // failed (cancellation). The handler's cancellation slot applies to the wait.
  template <class Handler>
  void async_tls_wait(Handler handler);

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
  // Reads ciphertext from the socket into the channel; the end of the stream and socket errors
  // are kept for OpenSSL to find. Returns only an error of the wait itself (cancellation).
  boost::asio::awaitable<error_code> fill_tls_input();
  // Its two halves: the space to read into and whether a read may be trusted (nullopt: the end or
  // an error is already there for OpenSSL to find), and the bytes read taken in.
  struct TlsFill {
    ReadInto into;  // the channel's input buffer: storage taken when the read calls recv
    TurnEnded ends;
  };
  std::optional<TlsFill> begin_tls_fill();
  error_code end_tls_fill(const error_code& ec, std::size_t n);
  [[nodiscard]] bool tls_read_wants_write() const noexcept;
  template <class Handler>
  struct TlsFilled;
  // Waits for what the last TLS call asked for: more ciphertext, or room to write.
  boost::asio::awaitable<error_code> wait_for_tls(bool wants_write);
  // Creates the SSL object and the channel under it; false (tls() stays false) when OpenSSL
  // cannot.
  bool attach_tls(SSL_CTX* context);
  boost::asio::awaitable<TlsHandshake> handshake();

  RelaySocket socket_;
  std::unique_ptr<TlsChannel> tls_;
};

// A fill's completion: the ciphertext taken in, then the reader's handler, whose cancellation
// slot the read uses.
template <class Handler>
struct Stream::TlsFilled {
  Stream* stream;
  Handler handler;
  using cancellation_slot_type = boost::asio::associated_cancellation_slot_t<Handler>;
  cancellation_slot_type get_cancellation_slot() const noexcept {
    return boost::asio::get_associated_cancellation_slot(handler);
  }
  void operator()(const error_code& ec, std::size_t n) {
    const error_code wait_ec = stream->end_tls_fill(ec, n);
    std::move(handler)(wait_ec);
  }
};

template <class Handler>
void Stream::async_tls_wait(Handler handler) {
  if (tls_read_wants_write()) {
    socket_.async_wait(tcp::socket::wait_write, std::move(handler));
    return;
  }
  const auto fill = begin_tls_fill();
  if (!fill) {
    // OpenSSL finds the end or the error at the next read.
    boost::asio::post(socket_.get_executor(),
                      [h = std::move(handler)]() mutable { std::move(h)(error_code{}); });
    return;
  }
  socket_.async_read_drained(fill->into, fill->ends, TlsFilled<Handler>{this, std::move(handler)});
}

}  // namespace seedproxy::proxy
