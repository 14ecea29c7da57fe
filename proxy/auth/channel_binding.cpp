// Certificate hashing for tls-server-end-point, through OpenSSL's X.509 code.
#include "proxy/auth/channel_binding.hpp"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include <climits>
#include <memory>

#include "proxy/auth/base64.hpp"

namespace seedproxy::auth {
namespace {

struct X509Free {
  void operator()(X509* cert) const noexcept { X509_free(cert); }
};

}  // namespace

std::optional<std::vector<std::byte>> tls_server_end_point_hash(ByteSpan der_certificate,
                                                                std::string& error) {
  if (der_certificate.empty() || der_certificate.size() > static_cast<std::size_t>(LONG_MAX)) {
    error = "no certificate";
    return std::nullopt;
  }
  const auto* cursor = reinterpret_cast<const unsigned char*>(der_certificate.data());
  const auto* const end = cursor + der_certificate.size();
  std::unique_ptr<X509, X509Free> cert(
      d2i_X509(nullptr, &cursor, static_cast<long>(der_certificate.size())));
  if (!cert || cursor != end) {
    error = cert ? "trailing bytes after the DER certificate" : "not a DER certificate";
    return std::nullopt;
  }
  int digest_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert.get()), &digest_nid, nullptr) ||
      digest_nid == NID_undef) {
    error = "the certificate's signature algorithm has no single hash function";
    return std::nullopt;
  }
  const EVP_MD* digest = nullptr;
  if (digest_nid == NID_md5 || digest_nid == NID_sha1)
    digest = EVP_sha256();
  else
    digest = EVP_get_digestbynid(digest_nid);
  if (digest == nullptr) {
    error = std::string("no digest for the certificate's signature hash ") + OBJ_nid2sn(digest_nid);
    return std::nullopt;
  }
  std::vector<std::byte> hash(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (X509_digest(cert.get(), digest, reinterpret_cast<unsigned char*>(hash.data()), &length) !=
      1) {
    error = "could not hash the certificate";
    return std::nullopt;
  }
  hash.resize(length);
  return hash;
}

std::string channel_binding_value(ByteSpan end_point_hash) {
  const auto header = as_bytes(gs2_header_plus);
  std::vector<std::byte> input(header.begin(), header.end());
  input.insert(input.end(), end_point_hash.begin(), end_point_hash.end());
  return base64_encode(input);
}

}  // namespace seedproxy::auth
