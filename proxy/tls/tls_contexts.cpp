// Building SSL_CTX objects from the configuration: versions, ciphers, certificate chains, keys,
// CAs, ALPN; every failure worded with the key, the file and OpenSSL's reason.
#include "proxy/tls/tls_contexts.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

#include <algorithm>

#include "proxy/auth/channel_binding.hpp"

namespace seedproxy::proxy {
namespace {

struct ContextFree {
  void operator()(SSL_CTX* context) const noexcept { SSL_CTX_free(context); }
};

// Every reason in OpenSSL's queue, the root cause first ("no start line (PEM lib)").
std::string openssl_reason() {
  std::string out;
  while (const unsigned long code = ERR_get_error()) {
    const char* reason = ERR_reason_error_string(code);
    if (reason == nullptr) continue;
    out += out.empty() ? reason : std::string(" (") + reason + ")";
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

[[noreturn]] void fail(const std::string& what) {
  throw TlsLoadError(what + ": " + openssl_reason());
}

void set_versions(SSL_CTX* context, const std::vector<std::string>& protocols, const char* key) {
  const bool v12 = std::find(protocols.begin(), protocols.end(), "TLSv1.2") != protocols.end();
  const bool v13 = std::find(protocols.begin(), protocols.end(), "TLSv1.3") != protocols.end();
  if (SSL_CTX_set_min_proto_version(context, v12 ? TLS1_2_VERSION : TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(context, v13 ? TLS1_3_VERSION : TLS1_2_VERSION) != 1)
    fail(std::string("cannot set ") + key);
}

void common_options(SSL_CTX* context) {
  // No renegotiation (a DoS lever), no compression (CRIME); a peer that closes the socket without
  // close_notify is an ordinary end of the connection (the protocol frames its own messages).
  SSL_CTX_set_options(
      context, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Non-blocking writes may complete in part and be retried from a moved buffer; idle
  // connections give their record buffers back.
  SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                SSL_MODE_RELEASE_BUFFERS);
}

// As PostgreSQL's server: no session tickets (TLS 1.3 sent two after every handshake, each an
// encrypted copy of the session) and no session cache. libpq never resumes a session, so they were
// work on every connection that no client used.
void no_resumption(SSL_CTX* context) {
  SSL_CTX_set_options(context, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(context, 0);
  SSL_CTX_set_session_cache_mode(context, SSL_SESS_CACHE_OFF);
}

void load_certificate(SSL_CTX* context, const std::string& cert_file, const std::string& key_file,
                      const char* section) {
  if (SSL_CTX_use_certificate_chain_file(context, cert_file.c_str()) != 1)
    fail(std::string("cannot load ") + section + ".cert_file \"" + cert_file + "\"");
  if (SSL_CTX_use_PrivateKey_file(context, key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    fail(std::string("cannot load ") + section + ".key_file \"" + key_file + "\"");
  if (SSL_CTX_check_private_key(context) != 1)
    fail(std::string(section) + ".key_file \"" + key_file + "\" does not match cert_file \"" +
         cert_file + "\"");
}

// PostgreSQL 17's direct TLS requires ALPN "postgresql"; any other protocol offered is refused
// with a fatal alert, as the server does. No ALPN at all is allowed (SSLRequest clients).
int select_alpn(SSL*, const unsigned char** out, unsigned char* out_length, const unsigned char* in,
                unsigned int in_length, void*) {
  for (unsigned int at = 0; at < in_length;) {
    const unsigned length = in[at];
    if (at + 1 + length > in_length) break;
    if (std::string_view(reinterpret_cast<const char*>(in + at + 1), length) == postgresql_alpn) {
      *out = in + at + 1;
      *out_length = static_cast<unsigned char>(length);
      return SSL_TLSEXT_ERR_OK;
    }
    at += 1 + length;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

std::vector<std::byte> certificate_end_point_hash(X509* certificate) {
  if (certificate == nullptr) return {};
  unsigned char* der = nullptr;
  const int length = i2d_X509(certificate, &der);
  if (length <= 0) return {};
  std::string error;
  auto hash = auth::tls_server_end_point_hash(
      std::span(reinterpret_cast<const std::byte*>(der), static_cast<std::size_t>(length)), error);
  OPENSSL_free(der);
  return hash ? std::move(*hash) : std::vector<std::byte>{};
}

std::shared_ptr<const ClientTlsContext> load_client_tls(const config::ClientTls& tls) {
  auto out = std::make_shared<ClientTlsContext>();
  out->mode = tls.sslmode;
  if (tls.sslmode == config::SslMode::disable) return out;
  ERR_clear_error();
  SslContextPtr context(SSL_CTX_new(TLS_server_method()), ContextFree{});
  if (!context) fail("cannot create a TLS context");
  common_options(context.get());
  SSL_CTX_set_options(context.get(), SSL_OP_CIPHER_SERVER_PREFERENCE);
  set_versions(context.get(), tls.protocols, "client_tls.protocols");
  if (SSL_CTX_set_cipher_list(context.get(), tls.ciphers.c_str()) != 1)
    fail("client_tls.ciphers \"" + tls.ciphers + "\" names no usable cipher");
  load_certificate(context.get(), tls.cert_file, tls.key_file, "client_tls");
  if (!tls.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(context.get(), tls.ca_file.c_str(), nullptr) != 1)
      fail("cannot load client_tls.ca_file \"" + tls.ca_file + "\"");
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.ca_file.c_str()))
      SSL_CTX_set_client_CA_list(context.get(), names);
  }
  if (out->wants_certificate())
    SSL_CTX_set_verify(context.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  SSL_CTX_set_alpn_select_cb(context.get(), select_alpn, nullptr);
  no_resumption(context.get());
  static const unsigned char session_id[] = "seedproxy";
  SSL_CTX_set_session_id_context(context.get(), session_id, sizeof session_id - 1);
  out->end_point_hash = certificate_end_point_hash(SSL_CTX_get0_certificate(context.get()));
  out->context = std::move(context);
  return out;
}

std::shared_ptr<const UpstreamTlsContext> load_upstream_tls(const config::ServerTls& tls) {
  auto out = std::make_shared<UpstreamTlsContext>();
  out->mode = tls.sslmode;
  if (tls.sslmode == config::SslMode::disable) return out;
  ERR_clear_error();
  SslContextPtr context(SSL_CTX_new(TLS_client_method()), ContextFree{});
  if (!context) fail("cannot create a TLS context");
  common_options(context.get());
  set_versions(context.get(), {"TLSv1.2", "TLSv1.3"}, "server_tls");
  if (!tls.cert_file.empty())
    load_certificate(context.get(), tls.cert_file, tls.key_file, "server_tls");
  if (!tls.ca_file.empty() &&
      SSL_CTX_load_verify_locations(context.get(), tls.ca_file.c_str(), nullptr) != 1)
    fail("cannot load server_tls.ca_file \"" + tls.ca_file + "\"");
  // prefer and require encrypt without checking whom they talk to, as in libpq.
  SSL_CTX_set_verify(context.get(),
                     tls.sslmode >= config::SslMode::verify_ca ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                     nullptr);
  static const unsigned char alpn[] = "\x0apostgresql";
  SSL_CTX_set_alpn_protos(context.get(), alpn, sizeof alpn - 1);
  out->context = std::move(context);
  return out;
}

std::string peer_common_name(SSL* ssl) {
  X509* peer = ssl ? SSL_get0_peer_certificate(ssl) : nullptr;
  if (peer == nullptr) return {};
  char name[256] = {};
  const int length =
      X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name, sizeof name);
  return length > 0 ? std::string(name, static_cast<std::size_t>(length)) : std::string();
}

}  // namespace seedproxy::proxy
