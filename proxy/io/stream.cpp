// Plain and TLS reads and writes on a non-blocking socket, handshakes, and closing.
#include "proxy/io/stream.hpp"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;
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

}  // namespace

Stream::Stream(tcp::socket socket) : socket_(std::move(socket)) {
  error_code ignored;
  socket_.non_blocking(true, ignored);
}

Stream::~Stream() {
  if (ssl_) SSL_free(ssl_);
}

std::size_t Stream::tls_read(std::span<std::byte> out, error_code& ec) {
  ERR_clear_error();
  std::size_t n = 0;
  read_wants_write_ = false;
  if (SSL_read_ex(ssl_, out.data(), out.size(), &n) == 1) {
    ec = {};
    return n;
  }
  switch (SSL_get_error(ssl_, 0)) {
    case SSL_ERROR_WANT_READ:
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_WANT_WRITE:
      read_wants_write_ = true;
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;  // close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a bare close
      break;
    case SSL_ERROR_SYSCALL:
      ec = errno ? error_code(errno, asio::error::get_system_category())
                 : error_code(asio::error::eof);
      break;
    default:
      ec = ssl_error_code();
  }
  return 0;
}

std::size_t Stream::tls_write(std::span<const std::byte> bytes, error_code& ec) {
  if (bytes.empty()) return ec = {}, 0;
  ERR_clear_error();
  std::size_t n = 0;
  write_wants_read_ = false;
  if (SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) == 1) {
    ec = {};
    return n;
  }
  switch (SSL_get_error(ssl_, 0)) {
    case SSL_ERROR_WANT_WRITE:
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_WANT_READ:
      write_wants_read_ = true;
      ec = asio::error::would_block;
      break;
    case SSL_ERROR_SYSCALL:
      ec = errno ? error_code(errno, asio::error::get_system_category())
                 : error_code(asio::error::broken_pipe);
      break;
    default:
      ec = ssl_error_code();
  }
  return 0;
}

asio::awaitable<std::tuple<error_code, std::size_t>> Stream::tls_receive(std::span<std::byte> out) {
  for (;;) {
    error_code ec;
    const std::size_t n = tls_read(out, ec);
    if (ec != asio::error::would_block) co_return std::tuple{ec, n};
    if (buffered()) continue;
    auto [wait_ec] = co_await async_wait_readable(use_tuple);
    if (wait_ec) co_return std::tuple{wait_ec, std::size_t{0}};
  }
}

asio::awaitable<error_code> Stream::read_exact(std::span<std::byte> out) {
  std::size_t done = 0;
  while (done < out.size()) {
    error_code ec;
    done += read_some(out.subspan(done), ec);
    if (!ec) continue;
    if (ec != asio::error::would_block) co_return ec;
    if (buffered()) continue;
    if (auto [wait_ec] = co_await async_wait_readable(use_tuple); wait_ec) co_return wait_ec;
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
    if (auto [wait_ec] = co_await async_wait_writable(use_tuple); wait_ec) co_return wait_ec;
  }
  co_return error_code{};
}

asio::awaitable<TlsHandshake> Stream::handshake() {
  TlsHandshake out;
  for (;;) {
    ERR_clear_error();
    const int result = SSL_do_handshake(ssl_);
    if (result == 1) {
      out.ok = true;
      co_return out;
    }
    const int why = SSL_get_error(ssl_, result);
    if (why == SSL_ERROR_WANT_READ || why == SSL_ERROR_WANT_WRITE) {
      auto [ec] = co_await socket_.async_wait(
          why == SSL_ERROR_WANT_READ ? tcp::socket::wait_read : tcp::socket::wait_write, use_tuple);
      if (!ec) continue;
      out.error = ec == asio::error::operation_aborted ? "cancelled" : ec.message();
      out.closed = true;
      co_return out;
    }
    if (const long verify = SSL_get_verify_result(ssl_); verify != X509_V_OK) {
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

asio::awaitable<TlsHandshake> Stream::accept_tls(SSL_CTX* context) {
  ssl_ = SSL_new(context);
  if (!ssl_ || SSL_set_fd(ssl_, socket_.native_handle()) != 1)
    co_return TlsHandshake{false, false, false, openssl_reason("cannot create a TLS connection")};
  SSL_set_accept_state(ssl_);
  co_return co_await handshake();
}

asio::awaitable<TlsHandshake> Stream::connect_tls(SSL_CTX* context, const std::string& server_name,
                                                  bool verify_name) {
  ssl_ = SSL_new(context);
  if (!ssl_ || SSL_set_fd(ssl_, socket_.native_handle()) != 1)
    co_return TlsHandshake{false, false, false, openssl_reason("cannot create a TLS connection")};
  SSL_set_connect_state(ssl_);
  error_code not_ip;
  (void)asio::ip::make_address(server_name, not_ip);
  // SNI carries host names only (RFC 6066), as libpq sends it.
  if (not_ip && !server_name.empty()) SSL_set_tlsext_host_name(ssl_, server_name.c_str());
  if (verify_name) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = not_ip ? X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0)
                           : X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
    if (set != 1)
      co_return TlsHandshake{false, false, false, "cannot check the server's name " + server_name};
  }
  co_return co_await handshake();
}

std::string Stream::tls_version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

std::string Stream::tls_cipher() const {
  const char* name = ssl_ ? SSL_get_cipher_name(ssl_) : nullptr;
  return name ? name : "";
}

std::string Stream::alpn() const {
  if (!ssl_) return {};
  const unsigned char* data = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &data, &length);
  return data ? std::string(reinterpret_cast<const char*>(data), length) : std::string();
}

void Stream::cancel() noexcept {
  error_code ignored;
  socket_.cancel(ignored);
}

void Stream::close() noexcept {
  error_code ignored;
  if (ssl_ && socket_.is_open() && SSL_is_init_finished(ssl_)) {
    ERR_clear_error();
    (void)SSL_shutdown(ssl_);  // one non-blocking attempt to send close_notify
  }
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void Stream::reset() noexcept {
  close();
  if (ssl_) SSL_free(ssl_);
  ssl_ = nullptr;
  read_wants_write_ = false;
  write_wants_read_ = false;
}

}  // namespace seedproxy::proxy
