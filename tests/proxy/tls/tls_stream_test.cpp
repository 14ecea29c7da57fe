// TLS contexts from files (and the errors that name them) and Stream over real loopback sockets:
// handshakes both ways, ALPN, certificate failures, and a megabyte each way through partial
// non-blocking reads and writes.
#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
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

// A connected loopback pair, each end a Stream.
struct Pair {
  asio::io_context io{1};
  std::unique_ptr<Stream> server, client;
  Pair() {
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    tcp::socket a(io), b(io);
    b.connect(acceptor.local_endpoint());
    acceptor.accept(a);
    server = std::make_unique<Stream>(std::move(a));
    client = std::make_unique<Stream>(std::move(b));
  }
  template <class Awaitable>
  auto run(Awaitable awaitable) {
    auto future = asio::co_spawn(io, std::move(awaitable), asio::use_future);
    io.run();
    io.restart();
    return future.get();
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
