// tls-server-end-point hashes of certificates made here with each signature algorithm.
#include "proxy/auth/channel_binding.hpp"

#include <doctest/doctest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <vector>

#include "proxy/auth/base64.hpp"

using namespace seedproxy::auth;

namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
struct X509Free {
  void operator()(X509* cert) const noexcept { X509_free(cert); }
};
using Key = std::unique_ptr<EVP_PKEY, PkeyFree>;

Key rsa_key() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024))); }
Key ec_key() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")); }
Key ed25519_key() { return Key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); }

// A self-signed certificate signed with `digest` (nullptr for Ed25519), as DER.
std::vector<std::byte> certificate(EVP_PKEY* key, const EVP_MD* digest) {
  std::unique_ptr<X509, X509Free> cert(X509_new());
  REQUIRE(cert);
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("proxy.test"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  REQUIRE(X509_sign(cert.get(), key, digest) > 0);
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert.get(), &der);
  REQUIRE(length > 0);
  std::vector<std::byte> out(reinterpret_cast<std::byte*>(der),
                             reinterpret_cast<std::byte*>(der) + length);
  OPENSSL_free(der);
  return out;
}

std::vector<std::byte> digest_of(const std::vector<std::byte>& data, const EVP_MD* digest) {
  std::vector<std::byte> out(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  REQUIRE(EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()),
                     &length, digest, nullptr) == 1);
  out.resize(length);
  return out;
}

}  // namespace

TEST_CASE("MD5-, SHA-1- and SHA-256-signed certificates are hashed with SHA-256") {
  const auto rsa = rsa_key();
  const auto ec = ec_key();
  REQUIRE(rsa);
  REQUIRE(ec);
  for (const auto& [key, digest] :
       std::vector<std::pair<EVP_PKEY*, const EVP_MD*>>{{rsa.get(), EVP_md5()},
                                                        {rsa.get(), EVP_sha1()},
                                                        {rsa.get(), EVP_sha256()},
                                                        {ec.get(), EVP_sha1()},
                                                        {ec.get(), EVP_sha256()}}) {
    const auto der = certificate(key, digest);
    std::string error;
    const auto hash = tls_server_end_point_hash(der, error);
    REQUIRE_MESSAGE(hash, error);
    CHECK(*hash == digest_of(der, EVP_sha256()));
  }
}

TEST_CASE("SHA-384- and SHA-512-signed certificates are hashed with their own hash") {
  const auto rsa = rsa_key();
  const auto ec = ec_key();
  for (const auto& [key, digest] :
       std::vector<std::pair<EVP_PKEY*, const EVP_MD*>>{{rsa.get(), EVP_sha384()},
                                                        {rsa.get(), EVP_sha512()},
                                                        {ec.get(), EVP_sha384()},
                                                        {ec.get(), EVP_sha512()}}) {
    const auto der = certificate(key, digest);
    std::string error;
    const auto hash = tls_server_end_point_hash(der, error);
    REQUIRE_MESSAGE(hash, error);
    CHECK(hash->size() == static_cast<std::size_t>(EVP_MD_get_size(digest)));
    CHECK(*hash == digest_of(der, digest));
  }
}

TEST_CASE("certificates without a single signature hash, and non-certificates, are refused") {
  const auto ed = ed25519_key();
  REQUIRE(ed);
  std::string error;
  CHECK_FALSE(tls_server_end_point_hash(certificate(ed.get(), nullptr), error));
  CHECK(error.find("no single hash") != std::string::npos);

  auto der = certificate(rsa_key().get(), EVP_sha256());
  CHECK_FALSE(tls_server_end_point_hash({}, error));
  const std::vector<std::byte> garbage(100, std::byte{0x30});
  CHECK_FALSE(tls_server_end_point_hash(garbage, error));
  for (std::size_t cut = 0; cut < der.size(); cut += 7)
    CHECK_FALSE(tls_server_end_point_hash(std::span(der).first(cut), error));
  der.push_back(std::byte{0});
  CHECK_FALSE(tls_server_end_point_hash(der, error));
  CHECK(error == "trailing bytes after the DER certificate");
}

TEST_CASE("the c= value is base64 of the gs2 header and the hash") {
  const std::vector<std::byte> hash(32, std::byte{0xab});
  const auto decoded = base64_decode(channel_binding_value(hash));
  REQUIRE(decoded);
  std::string text(reinterpret_cast<const char*>(decoded->data()), decoded->size());
  CHECK(text.starts_with("p=tls-server-end-point,,"));
  CHECK(decoded->size() == gs2_header_plus.size() + 32);
}
