// Plain and TLS reads and writes on a non-blocking socket, handshakes, and closing. Under TLS,
// OpenSSL talks to the socket through a BIO of our own: reads come from ciphertext the stream
// already took from the socket with its drained read, writes go straight to the socket.
#include "proxy/io/stream.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cassert>
#include <cstring>
#include <utility>

#include "proxy/io/buffer_pool.hpp"

namespace seedproxy::proxy {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

struct TlsChannel {
  explicit TlsChannel(RelaySocket& s) : socket(&s) {}
  ~TlsChannel() {
    if (ssl) SSL_free(ssl);  // and the BIO with it
  }
  TlsChannel(const TlsChannel&) = delete;
  TlsChannel& operator=(const TlsChannel&) = delete;

  RelaySocket* socket;  // the stream's own (a moved stream points it at its new socket)
  SSL* ssl = nullptr;
  IoBuffer input;             // ciphertext read from the socket that OpenSSL has not taken yet
  bool input_filled = false;  // the last socket read filled its space: more is probably there
  bool filling = false;       // a socket read into `input` is under way
  bool end = false;           // the peer closed its side (after everything in `input`)
  error_code read_error;      // the socket's own errors, behind OpenSSL's SSL_ERROR_SYSCALL
  error_code write_error;
  error_code deferred;            // met after bytes were returned: the next read reports it
  bool read_wants_write = false;  // the last SSL_read could not send what it had to
  bool write_wants_read = false;  // the last SSL_write wanted to read (never in TLS 1.3)
};

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// OpenSSL's reason for the newest error in this thread's queue, or `fallback`.
std::string openssl_reason(const char* fallback) {
  const unsigned long code = ERR_peek_last_error();
  if (code == 0) return fallback;
  const char* reason = ERR_reason_error_string(code);
  return reason ? reason : fallback;
}

error_code ssl_error_code() {
  const unsigned long code = ERR_peek_last_error();
  return code ? error_code(static_cast<int>(code), asio::error::get_ssl_category())
              : error_code(asio::error::connection_reset);
}

// SSL_get_error reads this thread's error queue, so it must hold nothing older than the call.
// Clearing an empty queue still walks all its slots: on the per-record path, look first.
void clear_errors() {
  if (ERR_peek_error() != 0) ERR_clear_error();
}

// Whether `received` is one or more whole TLS records (5-byte header: type, version, length).
bool ends_at_record_boundary(std::span<const std::byte> received) noexcept {
  std::size_t at = 0;
  while (at + 5 <= received.size()) {
    const auto length = static_cast<std::size_t>(std::to_integer<unsigned>(received[at + 3]) << 8 |
                                                 std::to_integer<unsigned>(received[at + 4]));
    at += 5 + length;
  }
  return at == received.size() && at > 0;
}

TlsChannel& channel_of(BIO* bio) { return *static_cast<TlsChannel*>(BIO_get_data(bio)); }

// OpenSSL reads from what the stream already read. Empty: "retry" (OpenSSL says WANT_READ and the
// stream reads the socket), or a plain failure at the end of the stream (BIO_eof tells which).
int channel_read(BIO* bio, char* out, std::size_t size, std::size_t* read) {
  auto& channel = channel_of(bio);
  BIO_clear_retry_flags(bio);
  *read = 0;
  const auto unread = channel.input.unread();
  // While a socket read is under way its bytes are not there yet, and `input` must not move.
  if (unread.empty() || channel.filling) {
    if (channel.filling || (!channel.end && !channel.read_error)) BIO_set_retry_read(bio);
    return 0;
  }
  const std::size_t n = std::min(size, unread.size());
  std::memcpy(out, unread.data(), n);
  channel.input.consume(n);
  *read = n;
  return 1;
}

// OpenSSL writes records straight to the socket; a full socket is "retry" (WANT_WRITE).
int channel_write(BIO* bio, const char* bytes, std::size_t size, std::size_t* written) {
  auto& channel = channel_of(bio);
  BIO_clear_retry_flags(bio);
  error_code ec;
  *written = channel.socket->write_some(asio::buffer(bytes, size), ec);
  if (!ec) return 1;
  if (ec == asio::error::would_block) {
    BIO_set_retry_write(bio);
  } else {
    channel.write_error = ec;
  }
  return 0;
}

long channel_ctrl(BIO* bio, int command, long, void*) {
  if (BIO_get_data(bio) == nullptr) return 0;
  switch (command) {
    case BIO_CTRL_FLUSH:
      return 1;  // nothing is held back
    case BIO_CTRL_EOF:
      return channel_of(bio).end ? 1 : 0;  // with SSL_OP_IGNORE_UNEXPECTED_EOF: a clean end
    case BIO_CTRL_PENDING:
      return static_cast<long>(channel_of(bio).input.unread().size());
    default:
      return 0;
  }
}

BIO_METHOD* channel_method() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "seedproxy stream");
    if (made) {
      BIO_meth_set_read_ex(made, channel_read);
      BIO_meth_set_write_ex(made, channel_write);
      BIO_meth_set_ctrl(made, channel_ctrl);
    }
    return made;
  }();
  return method;
}

// Why the last SSL_read returned nothing: would_block (for more ciphertext, or with
// read_wants_write for room to send), eof, or the error.
error_code read_failure(TlsChannel& channel) {
  switch (SSL_get_error(channel.ssl, 0)) {
    case SSL_ERROR_WANT_READ:
      return asio::error::would_block;
    case SSL_ERROR_WANT_WRITE:
      channel.read_wants_write = true;
      return asio::error::would_block;
    case SSL_ERROR_ZERO_RETURN:
      return asio::error::eof;  // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare close
    case SSL_ERROR_SYSCALL:
      if (channel.read_error) return channel.read_error;
      if (channel.write_error) return channel.write_error;
      return asio::error::eof;
    default:
      return ssl_error_code();
  }
}

}  // namespace

Stream::Stream(ContextSocket socket) : socket_(std::move(socket)) {
  error_code ignored;
  socket_.non_blocking(true, ignored);
}

Stream::~Stream() = default;

Stream::Stream(Stream&& other) noexcept
    : socket_(std::move(other.socket_)), tls_(std::move(other.tls_)) {
  if (tls_) tls_->socket = &socket_;
}

Stream& Stream::operator=(Stream&& other) noexcept {
  socket_ = std::move(other.socket_);
  tls_ = std::move(other.tls_);
  if (tls_) tls_->socket = &socket_;
  return *this;
}

SSL* Stream::ssl() const noexcept { return tls_ ? tls_->ssl : nullptr; }

bool Stream::buffered() const noexcept {
  return tls_ && (SSL_pending(tls_->ssl) > 0 || !tls_->input.empty());
}

std::size_t Stream::tls_read(std::span<std::byte> out, error_code& ec) {
  auto& channel = *tls_;
  ec = std::exchange(channel.deferred, {});
  if (ec) return 0;
  channel.read_wants_write = false;
  std::size_t done = 0;
  // Every record already read goes into `out` (a message sent in many small records reaches the
  // relay as one read); the socket is left to tls_receive.
  while (done < out.size()) {
    clear_errors();
    std::size_t n = 0;
    if (SSL_read_ex(channel.ssl, out.data() + done, out.size() - done, &n) == 1) {
      done += n;
      if (channel.input.empty() && SSL_pending(channel.ssl) == 0) break;
      continue;
    }
    const error_code why = read_failure(channel);
    if (done == 0) {
      ec = why;
    } else if (why != asio::error::would_block) {
      channel.deferred = why;
    }
    break;
  }
  return done;
}

std::size_t Stream::tls_write(std::span<const std::byte> bytes, error_code& ec) {
  auto& channel = *tls_;
  ec = {};
  channel.write_wants_read = false;
  std::size_t done = 0;
  // With partial writes on, SSL_write takes one record at a time: a batch longer than a record
  // still goes out in one call, record after record, until the socket is full.
  while (done < bytes.size()) {
    clear_errors();
    std::size_t n = 0;
    if (SSL_write_ex(channel.ssl, bytes.data() + done, bytes.size() - done, &n) == 1) {
      done += n;
      continue;
    }
    switch (SSL_get_error(channel.ssl, 0)) {
      case SSL_ERROR_WANT_WRITE:
        ec = done ? error_code() : error_code(asio::error::would_block);
        break;
      case SSL_ERROR_WANT_READ:
        channel.write_wants_read = true;
        ec = done ? error_code() : error_code(asio::error::would_block);
        break;
      case SSL_ERROR_SYSCALL:
        ec = channel.write_error ? channel.write_error : error_code(asio::error::broken_pipe);
        break;
      default:
        ec = ssl_error_code();
    }
    break;
  }
  return done;
}

std::optional<Stream::TlsFill> Stream::begin_tls_fill() {
  auto& channel = *tls_;
  if (channel.end || channel.read_error) return std::nullopt;  // OpenSSL finds them itself
  assert(!channel.filling);
  if (!channel.input_filled) channel.input.release_if_empty();
  // A read that starts at a record boundary and ends at one leaves the peer waiting for us (or
  // done): the next one waits for epoll without trying the socket first (drained_read.hpp).
  const TurnEnded ends =
      channel.input.unread().empty() ? &ends_at_record_boundary : &RelaySocket::never;
  channel.filling = true;
  return TlsFill{ReadInto{{}, &channel.input, channel.input_filled}, ends};
}

error_code Stream::end_tls_fill(const error_code& ec, std::size_t n) {
  auto& channel = *tls_;
  channel.filling = false;
  if (ec == asio::error::operation_aborted) return ec;
  channel.input.commit(n);
  channel.input_filled = channel.input.full();  // the read took all the room writable() gave
  if (ec == asio::error::eof) {
    channel.end = true;
  } else if (ec) {
    channel.read_error = ec;
  }
  return {};
}

bool Stream::tls_read_wants_write() const noexcept { return tls_->read_wants_write; }

asio::awaitable<error_code> Stream::fill_tls_input() {
  const auto fill = begin_tls_fill();
  if (!fill) co_return error_code{};
  auto [ec, n] = co_await socket_.async_read_drained(fill->into, fill->ends, use_tuple);
  co_return end_tls_fill(ec, n);
}

asio::awaitable<error_code> Stream::wait_for_tls(bool wants_write) {
  if (!wants_write) co_return co_await fill_tls_input();
  auto [ec] = co_await socket_.async_wait(tcp::socket::wait_write, use_tuple);
  co_return ec;
}

asio::awaitable<std::tuple<error_code, std::size_t>> Stream::tls_receive(std::span<std::byte> out) {
  for (;;) {
    error_code ec;
    const std::size_t n = tls_read(out, ec);
    if (ec != asio::error::would_block) co_return std::tuple{ec, n};
    // Not through wait_for_tls: one coroutine frame fewer held by every idle TLS pump. Awaits
    // stand alone (GCC 12 miscompiles co_await inside a condition).
    error_code wait_ec;
    if (tls_->read_wants_write) {
      std::tie(wait_ec) = co_await socket_.async_wait(tcp::socket::wait_write, use_tuple);
    } else {
      wait_ec = co_await fill_tls_input();
    }
    if (wait_ec) co_return std::tuple{wait_ec, std::size_t{0}};
  }
}

asio::awaitable<error_code> Stream::read_exact(std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    error_code ec;
    std::size_t n = 0;
    if (tls_) {
      std::tie(ec, n) = co_await tls_receive(out.subspan(done));
    } else {
      // Plain text reads exactly what is asked: what follows an SSLRequest is TLS's.
      n = socket_.read_some(asio::buffer(out.data() + done, out.size() - done), ec);
      if (ec == asio::error::would_block) {
        std::tie(ec) = co_await socket_.async_wait(tcp::socket::wait_read, use_tuple);
        n = 0;
      }
    }
    if (ec) co_return ec;
    done += n;
  }
  co_return error_code{};
}

asio::awaitable<error_code> Stream::write_all(std::span<const std::byte> bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    error_code ec;
    done += write_some(bytes.subspan(done), ec);
    if (!ec) continue;
    if (ec != asio::error::would_block) co_return ec;
    // An SSL_write that must read first would need the reading side's data (TLS 1.2
    // renegotiation, which the contexts refuse): not supported, rather than a second reader.
    if (tls_ && tls_->write_wants_read) co_return error_code(asio::error::operation_not_supported);
    auto [wait_ec] = co_await socket_.async_wait(tcp::socket::wait_write, use_tuple);
    if (wait_ec) co_return wait_ec;
  }
  co_return error_code{};
}

asio::awaitable<TlsHandshake> Stream::handshake() {
  TlsHandshake out;
  for (;;) {
    ERR_clear_error();
    const int result = SSL_do_handshake(tls_->ssl);
    if (result == 1) {
      out.ok = true;
      co_return out;
    }
    const int why = SSL_get_error(tls_->ssl, result);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
      const error_code ec = co_await wait_for_tls(why == SSL_ERROR_WANT_WRITE);
      if (!ec) continue;
      out.error = ec == asio::error::operation_aborted ? "cancelled" : ec.message();
      out.closed = true;
      co_return out;
    }
    if (const long verify = SSL_get_verify_result(tls_->ssl); verify != X509_V_OK) {
      out.error =
          std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
      out.certificate_failed = true;
    } else if (why == SSL_ERROR_SYSCALL || why == SSL_ERROR_ZERO_RETURN) {
      out.closed = ERR_peek_last_error() == 0;
      out.error = ERR_peek_last_error() ? openssl_reason("connection closed during the handshake")
                                        : "connection closed during the handshake";
    } else {
      out.error = openssl_reason("handshake failed");
    }
    co_return out;
  }
}

bool Stream::attach_tls(SSL_CTX* context) {
  BIO_METHOD* method = channel_method();
  auto channel = std::make_unique<TlsChannel>(socket_);
  channel->ssl = method ? SSL_new(context) : nullptr;
  BIO* bio = channel->ssl ? BIO_new(method) : nullptr;
  if (!bio) return false;
  BIO_set_data(bio, channel.get());
  BIO_set_init(bio, 1);
  SSL_set_bio(channel->ssl, bio, bio);  // one reference, for both directions
  tls_ = std::move(channel);
  return true;
}

asio::awaitable<TlsHandshake> Stream::accept_tls(SSL_CTX* context) {
  if (!attach_tls(context))
    co_return TlsHandshake{false, false, false, openssl_reason("cannot create a TLS connection")};
  SSL_set_accept_state(tls_->ssl);
  co_return co_await handshake();
}

asio::awaitable<TlsHandshake> Stream::connect_tls(SSL_CTX* context, const std::string& server_name,
                                                  bool verify_name) {
  if (!attach_tls(context))
    co_return TlsHandshake{false, false, false, openssl_reason("cannot create a TLS connection")};
  SSL* ssl = tls_->ssl;
  SSL_set_connect_state(ssl);
  error_code not_ip;
  (void)asio::ip::make_address(server_name, not_ip);
  // SNI carries host names only (RFC 6066), as libpq sends it.
  if (not_ip && !server_name.empty()) SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (verify_name) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = not_ip ? X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0)
                           : X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
    if (set != 1)
      co_return TlsHandshake{false, false, false, "cannot check the server's name " + server_name};
  }
  co_return co_await handshake();
}

std::string Stream::tls_version() const { return tls_ ? SSL_get_version(tls_->ssl) : ""; }

std::string Stream::tls_cipher() const {
  const char* name = tls_ ? SSL_get_cipher_name(tls_->ssl) : nullptr;
  return name ? name : "";
}

std::string Stream::alpn() const {
  if (!tls_) return {};
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(tls_->ssl, &data, &length);
  return data ? std::string(reinterpret_cast<const char*>(data), length) : std::string();
}

void Stream::cancel() noexcept {
  error_code ignored;
  socket_.forget_checks();
  socket_.cancel(ignored);
}

void Stream::close() noexcept {
  error_code ignored;
  if (tls_ && socket_.is_open() && SSL_is_init_finished(tls_->ssl)) {
    ERR_clear_error();
    (void)SSL_shutdown(tls_->ssl);  // one non-blocking attempt to send close_notify
  }
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.forget_checks();
  socket_.close(ignored);
}

void Stream::reset() noexcept {
  close();
  tls_.reset();
}

}  // namespace seedproxy::proxy
