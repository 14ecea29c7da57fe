// TLS contexts from files (and the errors that name them) and Stream over real loopback sockets:
// handshakes both ways, ALPN, client_tls.protocols and ciphers, certificate failures, a megabyte
// each way through partial non-blocking reads and writes, and the edges of OpenSSL over the
// stream's own buffer: many small records, data behind the handshake's last flight, the end with
// and without close_notify, KeyUpdate both ways, renegotiation refused.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/ioctl.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/io/stream.hpp"
#include "proxy/tls/tls_contexts.hpp"

using namespace seedproxy;
using namespace seedproxy::proxy;
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;

namespace {

struct Files {
  std::filesystem::path dir;
  std::string cert, key, other_cert;
  Files() {
    char pattern[] = "/tmp/seedproxy-tls-test-XXXXXX";
    dir = mkdtemp(pattern);
    cert = (dir / "proxy.crt").string();
    key = (dir / "proxy.key").string();
    other_cert = (dir / "other.crt").string();
    write_pair(cert, key, "127.0.0.1");
    write_pair(other_cert, (dir / "other.key").string(), "other");
  }
  ~Files() { std::filesystem::remove_all(dir); }

  static void write_pair(const std::string& cert_path, const std::string& key_path,
                         const char* name) {
    EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    REQUIRE(pkey);
    X509* x509 = X509_new();
    X509_set_version(x509, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x509), 7);
    X509_gmtime_adj(X509_getm_notBefore(x509), 0);
    X509_gmtime_adj(X509_getm_notAfter(x509), 3600);
    X509_set_pubkey(x509, pkey);
    X509_NAME* subject = X509_get_subject_name(x509);
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(name), -1, -1, 0);
    X509_set_issuer_name(x509, subject);
    REQUIRE(X509_sign(x509, pkey, EVP_sha256()) > 0);
    FILE* out = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(out, x509);
    std::fclose(out);
    out = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(out, pkey, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(out);
    X509_free(x509);
    EVP_PKEY_free(pkey);
  }
};

config::ClientTls client_side(const Files& files) {
  config::ClientTls tls;
  tls.sslmode = config::SslMode::require;
  tls.cert_file = files.cert;
  tls.key_file = files.key;
  return tls;
}

std::string load_error(const config::ClientTls& tls) {
  try {
    (void)load_client_tls(tls);
  } catch (const TlsLoadError& e) {
    return e.what();
  }
  return "(loaded)";
}

// A connected loopback pair, each end a Stream. `interposed`: the two ends are connected not to
// each other but to server_peer and client_peer, and the test carries the bytes across.
struct Pair {
  asio::io_context io{1};
  std::unique_ptr<Stream> server, client;
  std::optional<ContextSocket> server_peer, client_peer;
  explicit Pair(bool interposed = false) {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    auto connection = [&] {  // {accepted, connecting}
      std::pair<ContextSocket, ContextSocket> ends(io, io);
      ends.second.connect(acceptor.local_endpoint());
      acceptor.accept(ends.first);
      // As the proxy's sockets: small writes leave at once (no Nagle delay between two records).
      ends.first.set_option(tcp::no_delay(true));
      ends.second.set_option(tcp::no_delay(true));
      return ends;
    };
    auto [a, b] = connection();
    server = std::make_unique<Stream>(std::move(a));
    if (!interposed) {
      client = std::make_unique<Stream>(std::move(b));
      return;
    }
    server_peer.emplace(std::move(b));
    auto [c, d] = connection();
    client_peer.emplace(std::move(c));
    client = std::make_unique<Stream>(std::move(d));
  }
  // Runs `awaitable` to its end, with the sessions' end watch (end_watch.hpp) over both streams,
  // more often than the server's: an end of the stream that came with the last data is seen.
  template <class T>
  T run(asio::awaitable<T> awaitable) {
    asio::steady_timer watch(io);
    bool done = false;
    std::function<void()> arm = [&] {
      watch.expires_after(std::chrono::milliseconds(20));
      watch.async_wait([&](boost::system::error_code ec) {
        if (ec || done) return;
        server->socket().check_for_end();
        client->socket().check_for_end();
        arm();
      });
    };
    arm();
    std::optional<T> result;
    std::exception_ptr failure;
    asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e, T value) {
      failure = e;
      result = std::move(value);
      done = true;
      watch.cancel();
    });
    io.run();
    io.restart();
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
  }
};

// Handshakes a pair: the server with the proxy's context, the client with `client`.
asio::awaitable<bool> handshake_pair(Pair& pair, SSL_CTX* server, SSL_CTX* client) {
  auto [accepted, connected] =
      co_await (pair.server->accept_tls(server) && pair.client->connect_tls(client, "", false));
  co_return accepted.ok&& connected.ok;
}

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return std::vector<std::byte>(data, data + text.size());
}

// Polls (with a deadline) until `socket` has at least `bytes` waiting in the kernel.
bool wait_until_queued(ContextSocket& socket, int bytes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  int queued = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ioctl(socket.native_handle(), FIONREAD, &queued) == 0 && queued >= bytes) return true;
  }
  return false;
}

// Counts the handshake messages of one type and the alerts an SSL object sends.
struct Sent {
  int key_updates = 0;
  int no_renegotiation_alerts = 0;
  int tickets_received = 0;
  static void count(int write_p, int, int content_type, const void* buf, std::size_t len, SSL*,
                    void* arg) {
    auto& sent = *static_cast<Sent*>(arg);
    const auto* bytes = static_cast<const unsigned char*>(buf);
    if (len < 2) return;
    if (!write_p && content_type == SSL3_RT_HANDSHAKE && bytes[0] == SSL3_MT_NEWSESSION_TICKET)
      ++sent.tickets_received;
    if (!write_p) return;
    if (content_type == SSL3_RT_HANDSHAKE && bytes[0] == SSL3_MT_KEY_UPDATE) ++sent.key_updates;
    if (content_type == SSL3_RT_ALERT && bytes[1] == SSL_AD_NO_RENEGOTIATION)
      ++sent.no_renegotiation_alerts;
  }
  void watch(SSL* ssl) {
    SSL_set_msg_callback(ssl, count);
    SSL_set_msg_callback_arg(ssl, this);
  }
  void watch(SSL_CTX* context) {
    SSL_CTX_set_msg_callback(context, count);
    SSL_CTX_set_msg_callback_arg(context, this);
  }
};

SslContextPtr client_context(const char* alpn_wire = nullptr, const std::string& ca = {}) {
  SslContextPtr context(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (alpn_wire)
    SSL_CTX_set_alpn_protos(context.get(), reinterpret_cast<const unsigned char*>(alpn_wire),
                            static_cast<unsigned>(std::strlen(alpn_wire)));
  if (!ca.empty()) {
    REQUIRE(SSL_CTX_load_verify_locations(context.get(), ca.c_str(), nullptr) == 1);
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER, nullptr);
  }
  return context;
}

}  // namespace

TEST_CASE("a certificate loads once with its channel-binding hash") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  REQUIRE(tls->context);
  CHECK(tls->end_point_hash.size() == 32);  // ECDSA with SHA-256: SHA-256
  CHECK(tls->required());
  CHECK_FALSE(tls->wants_certificate());
  CHECK(load_client_tls(config::ClientTls{})->context == nullptr);  // disable
}

TEST_CASE("a file that cannot be used is named with the key and OpenSSL's reason") {
  Files files;
  auto tls = client_side(files);
  tls.cert_file = (files.dir / "missing.crt").string();
  auto what = load_error(tls);
  CHECK(what.find("client_tls.cert_file") != std::string::npos);
  CHECK(what.find("missing.crt") != std::string::npos);
  tls = client_side(files);
  tls.cert_file = tls.key_file;  // a key where a certificate belongs
  what = load_error(tls);
  CHECK(what.find("no start line") != std::string::npos);
  tls = client_side(files);
  tls.cert_file = files.other_cert;
  CHECK(load_error(tls).find("key values mismatch") != std::string::npos);
  tls = client_side(files);
  tls.ciphers = "NO-SUCH-CIPHER";
  CHECK(load_error(tls).find("client_tls.ciphers") != std::string::npos);
}

TEST_CASE("a megabyte each way through TLS, in partial non-blocking reads and writes") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  Pair pair;
  const auto client_ctx = client_context("\x0apostgresql");
  std::vector<std::byte> up(1 << 20), down(1 << 20);
  for (std::size_t i = 0; i < up.size(); ++i) {
    up[i] = static_cast<std::byte>(i * 7);
    down[i] = static_cast<std::byte>(i * 13);
  }
  auto work = [&]() -> asio::awaitable<bool> {
    auto [accepted, connected] = co_await (pair.server->accept_tls(tls->context.get()) &&
                                           pair.client->connect_tls(client_ctx.get(), "", false));
    if (!accepted.ok || !connected.ok) co_return false;
    CHECK(pair.server->alpn() == "postgresql");
    CHECK(pair.server->tls_version() == "TLSv1.3");
    CHECK_FALSE(pair.server->tls_cipher().empty());
    std::vector<std::byte> got_up(up.size()), got_down(down.size());
    auto [a, b, c, d] =
        co_await (pair.client->write_all(up) && pair.server->read_exact(got_up) &&
                  pair.server->write_all(down) && pair.client->read_exact(got_down));
    co_return !a && !b && !c && !d && got_up == up && got_down == down;
  };
  CHECK(pair.run(work()));
}

TEST_CASE("handshake failures say why: wrong CA, a protocol other than postgresql") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  {
    Pair pair;
    const auto untrusting = client_context(nullptr, files.other_cert);
    auto both = [&]() -> asio::awaitable<TlsHandshake> {
      auto [accepted, connected] =
          co_await (pair.server->accept_tls(tls->context.get()) &&
                    pair.client->connect_tls(untrusting.get(), "127.0.0.1", true));
      CHECK_FALSE(accepted.ok);
      co_return connected;
    };
    const auto result = pair.run(both());
    CHECK_FALSE(result.ok);
    CHECK(result.certificate_failed);
    CHECK(result.error.find("certificate verification failed") != std::string::npos);
  }
  {
    Pair pair;
    const auto http = client_context("\x08http/1.1");
    auto work = [&]() -> asio::awaitable<bool> {
      auto [accepted, connected] = co_await (pair.server->accept_tls(tls->context.get()) &&
                                             pair.client->connect_tls(http.get(), "", false));
      co_return !accepted.ok && !connected.ok;
    };
    CHECK(pair.run(work()));
  }
}

TEST_CASE("client_tls.protocols and ciphers decide what a client may use") {
  Files files;
  // A client that speaks TLS 1.2 at most, with one cipher (the certificate is ECDSA).
  const auto tls12_client = [](const char* cipher) {
    auto context = client_context();
    REQUIRE(SSL_CTX_set_max_proto_version(context.get(), TLS1_2_VERSION) == 1);
    REQUIRE(SSL_CTX_set_cipher_list(context.get(), cipher) == 1);
    return context;
  };
  // The version and cipher the proxy's side agreed on; empty when the handshake failed.
  const auto agreed = [](const config::ClientTls& settings, SSL_CTX* client) {
    const auto tls = load_client_tls(settings);
    Pair pair;
    auto work = [&]() -> asio::awaitable<std::string> {
      const bool shook = co_await handshake_pair(pair, tls->context.get(), client);
      co_return shook ? pair.server->tls_version() + " " + pair.server->tls_cipher() : "";
    };
    return pair.run(work());
  };
  const auto aes128 = tls12_client("ECDHE-ECDSA-AES128-GCM-SHA256");
  const auto aes256 = tls12_client("ECDHE-ECDSA-AES256-GCM-SHA384");
  // The defaults take TLS 1.2 clients.
  CHECK(agreed(client_side(files), aes128.get()) == "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256");
  auto only13 = client_side(files);
  only13.protocols = {"TLSv1.3"};
  CHECK(agreed(only13, aes128.get()).empty());
  CHECK(agreed(only13, client_context().get()).starts_with("TLSv1.3 "));
  auto narrow = client_side(files);
  narrow.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256";
  CHECK(agreed(narrow, aes128.get()) == "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256");
  CHECK(agreed(narrow, aes256.get()).empty());
}

TEST_CASE("a message sent in many small records reaches the reader in a few reads") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  Pair pair;
  const auto client_ctx = client_context();
  constexpr int records = 200, record_size = 10;
  std::vector<std::byte> sent;
  auto work = [&]() -> asio::awaitable<int> {
    const bool shook = co_await handshake_pair(pair, tls->context.get(), client_ctx.get());
    if (!shook) co_return -1;
    for (int i = 0; i < records; ++i) {
      std::vector<std::byte> record(record_size, std::byte(static_cast<unsigned char>(i)));
      sent.insert(sent.end(), record.begin(), record.end());
      const auto write_ec = co_await pair.client->write_all(record);  // one SSL_write, one record
      if (write_ec) co_return -1;
    }
    // Every record (TLS 1.3: 22 bytes of overhead each) is in the server's socket before it reads.
    if (!wait_until_queued(pair.server->socket(), records * (record_size + 22))) co_return -1;
    std::vector<std::byte> got(sent.size());
    int reads = 0;
    for (std::size_t done = 0; done < got.size(); ++reads) {
      auto [ec, n] = co_await pair.server->tls_receive(std::span(got).subspan(done));
      if (ec) co_return -1;
      done += n;
    }
    co_return got == sent ? reads : -1;
  };
  const int reads = pair.run(work());
  CHECK(reads > 0);
  CHECK(reads <= 5);  // record by record would take 200
}

// Carries an interposed pair's bytes across, except that the client's last handshake flight is
// held back until `client_wrote` is cancelled (or 5 s have passed), then sent to the server in one
// write with whatever the client wrote behind it. Ends when the peers are cancelled.
struct LastFlightRelay {
  Pair& pair;
  asio::steady_timer client_wrote{pair.io, std::chrono::seconds(5)};
  bool server_spoke = false;

  asio::awaitable<void> downstream() {  // server to client, as it comes
    std::array<char, 16384> buffer;
    for (;;) {
      auto [ec, n] = co_await pair.server_peer->async_read_some(
          asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      server_spoke = true;  // the client's next bytes answer the server's flight
      auto [write_ec, written] = co_await asio::async_write(
          *pair.client_peer, asio::buffer(buffer.data(), n), asio::as_tuple(asio::use_awaitable));
      if (write_ec) co_return;
    }
  }

  asio::awaitable<void> upstream() {  // client to server
    std::array<char, 16384> buffer;
    bool flight_held = false;
    for (;;) {
      auto [ec, n] = co_await pair.client_peer->async_read_some(
          asio::buffer(buffer), asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      std::vector<char> out(buffer.data(), buffer.data() + n);
      if (server_spoke && !flight_held) {
        flight_held = true;
        // The rest of the flight and what follows it are in the socket once the client has
        // written them (loopback delivers within the send).
        co_await client_wrote.async_wait(asio::as_tuple(asio::use_awaitable));
        boost::system::error_code read_ec;
        pair.client_peer->non_blocking(true);
        while (std::size_t more = pair.client_peer->read_some(asio::buffer(buffer), read_ec))
          out.insert(out.end(), buffer.data(), buffer.data() + more);
        pair.client_peer->non_blocking(false);
      }
      auto [write_ec, written] = co_await asio::async_write(*pair.server_peer, asio::buffer(out),
                                                            asio::as_tuple(asio::use_awaitable));
      if (write_ec) co_return;
    }
  }

  void stop() {
    client_wrote.cancel();
    pair.server_peer->cancel();
    pair.client_peer->cancel();
  }
};

TEST_CASE("bytes that arrive with the handshake's last flight are read without waiting") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  // The client's Finished and the startup packet behind it reach the server's socket together
  // (as when a client's kernel sends them in one segment), whichever the I/O backend: with epoll
  // the server reads only after readiness, so two writes without a suspension between them used
  // to be enough, but with io_uring the read is in the kernel and completes with the Finished
  // alone; the relay sends both in one write.
  Pair pair(true);
  LastFlightRelay relay{pair};
  const auto client_ctx = client_context();
  const auto message = bytes_of("startup packet right behind the client's Finished");
  auto client_side_work = [&]() -> asio::awaitable<bool> {
    const auto connected = co_await pair.client->connect_tls(client_ctx.get(), "", false);
    if (!connected.ok) co_return false;
    const auto write_ec = co_await pair.client->write_all(message);
    relay.client_wrote.cancel();
    co_return !write_ec;
  };
  auto work = [&]() -> asio::awaitable<bool> {
    asio::co_spawn(pair.io, relay.downstream(), asio::detached);
    asio::co_spawn(pair.io, relay.upstream(), asio::detached);
    auto [accepted, connected] =
        co_await (pair.server->accept_tls(tls->context.get()) && client_side_work());
    if (!accepted.ok || !connected) {
      relay.stop();
      co_return false;
    }
    CHECK(pair.server->buffered());  // read with the Finished, not yet decrypted
    std::vector<std::byte> got(message.size());
    const auto read_ec = co_await pair.server->read_exact(got);
    relay.stop();
    co_return !read_ec && got == message;
  };
  CHECK(pair.run(work()));
}

TEST_CASE("the end of the stream, with close_notify and without") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  const auto client_ctx = client_context();
  for (const bool notify : {true, false}) {
    CAPTURE(notify);
    Pair pair;
    const auto last = bytes_of("last words");
    auto work = [&]() -> asio::awaitable<bool> {
      const bool shook = co_await handshake_pair(pair, tls->context.get(), client_ctx.get());
      if (!shook) co_return false;
      const auto write_ec = co_await pair.client->write_all(last);
      if (write_ec) co_return false;
      // Half-closed, not closed: a socket closed with the server's session tickets unread would
      // send a reset instead of the end of the stream.
      if (notify) REQUIRE(SSL_shutdown(pair.client->ssl()) == 0);  // close_notify sent
      pair.client->socket().shutdown(tcp::socket::shutdown_send);  // without it: a bare end
      std::vector<std::byte> got(64);
      auto [ec, n] = co_await pair.server->tls_receive(got);
      CHECK_FALSE(ec);
      CHECK(std::vector<std::byte>(got.begin(), got.begin() + static_cast<long>(n)) == last);
      std::tie(ec, n) = co_await pair.server->tls_receive(got);
      CHECK(n == 0);
      co_return ec ==
          asio::error::eof;  // an ordinary end either way (SSL_OP_IGNORE_UNEXPECTED_EOF)
    };
    CHECK(pair.run(work()));
  }
}

TEST_CASE("a KeyUpdate either way is answered, and both keys stay in step") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  Pair pair;
  const auto client_ctx = client_context();
  Sent by_server, by_client;
  auto work = [&]() -> asio::awaitable<bool> {
    const bool shook = co_await handshake_pair(pair, tls->context.get(), client_ctx.get());
    if (!shook) co_return false;
    by_server.watch(pair.server->ssl());
    by_client.watch(pair.client->ssl());
    const auto ping = bytes_of("ping"), pong = bytes_of("pong");
    // The side that updates writes (its KeyUpdate goes first), the other reads it and answers
    // (its own KeyUpdate, owed since the read, goes before the answer), the first reads that.
    auto exchange = [&](Stream& updater, Stream& other) -> asio::awaitable<bool> {
      REQUIRE(SSL_key_update(updater.ssl(), SSL_KEY_UPDATE_REQUESTED) == 1);
      std::vector<std::byte> got_ping(ping.size()), got_pong(pong.size());
      const auto a = co_await updater.write_all(ping);
      const auto b = co_await other.read_exact(got_ping);
      const auto c = co_await other.write_all(pong);
      const auto d = co_await updater.read_exact(got_pong);
      co_return !a && !b && !c && !d && got_ping == ping && got_pong == pong;
    };
    const bool client_first = co_await exchange(*pair.client, *pair.server);
    const bool server_first = co_await exchange(*pair.server, *pair.client);
    co_return client_first&& server_first;
  };
  CHECK(pair.run(work()));
  // Each side sent its own KeyUpdate and answered the other's.
  CHECK(by_server.key_updates == 2);
  CHECK(by_client.key_updates == 2);
}

TEST_CASE("TLS 1.2 renegotiation is refused with an alert, and the stream ends cleanly") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  Pair pair;
  const auto client_ctx = client_context();
  SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_2_VERSION);
  Sent by_server;
  auto work = [&]() -> asio::awaitable<bool> {
    const bool shook = co_await handshake_pair(pair, tls->context.get(), client_ctx.get());
    if (!shook) co_return false;
    CHECK(pair.server->tls_version() == "TLSv1.2");
    by_server.watch(pair.server->ssl());
    REQUIRE(SSL_renegotiate(pair.client->ssl()) == 1);
    // The client's write sends a ClientHello and then needs the answer: refused, not waited for.
    const auto write_ec = co_await pair.client->write_all(bytes_of("after renegotiation"));
    CHECK(write_ec == asio::error::operation_not_supported);
    std::vector<std::byte> got(64);
    auto reading = [&]() -> asio::awaitable<boost::system::error_code> {
      auto [ec, n] = co_await pair.server->tls_receive(got);
      co_return ec;
    };
    auto closing = [&]() -> asio::awaitable<void> {
      // The server's alert makes the client's socket readable; then the client goes away.
      co_await pair.client->socket().async_wait(tcp::socket::wait_read, asio::use_awaitable);
      pair.client->close();
    };
    const auto ec = co_await (reading() && closing());
    co_return static_cast<bool>(ec);
  };
  CHECK(pair.run(work()));
  CHECK(by_server.no_renegotiation_alerts == 1);
}

TEST_CASE("no session tickets, as PostgreSQL: libpq never resumes, so they were wasted work") {
  Files files;
  const auto tls = load_client_tls(client_side(files));
  for (const int version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    CAPTURE(version);
    Pair pair;
    const auto client_ctx = client_context();
    SSL_CTX_set_max_proto_version(client_ctx.get(), version);
    Sent seen_by_client;
    seen_by_client.watch(client_ctx.get());
    auto work = [&]() -> asio::awaitable<bool> {
      const bool shook = co_await handshake_pair(pair, tls->context.get(), client_ctx.get());
      if (!shook) co_return false;
      // A TLS 1.3 ticket follows the handshake: a round of data makes sure the client read it.
      const auto ping = bytes_of("ping");
      std::vector<std::byte> got(ping.size());
      const auto a = co_await pair.server->write_all(ping);
      const auto b = co_await pair.client->read_exact(got);
      co_return !a && !b && got == ping;
    };
    CHECK(pair.run(work()));
    CHECK(seen_by_client.tickets_received == 0);
  }
}
