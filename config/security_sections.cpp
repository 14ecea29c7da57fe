// client_tls, server_tls and auth: TLS policies, certificate files, and who authenticates clients.
#include "config/security_sections.hpp"

#include <algorithm>
#include <array>

#include "config/json_readers.hpp"

namespace seedproxy::config::detail {
namespace {

constexpr std::array<std::pair<std::string_view, SslMode>, 6> client_modes{{
    {"disable", SslMode::disable},
    {"allow", SslMode::allow},
    {"prefer", SslMode::prefer},
    {"require", SslMode::require},
    {"verify-ca", SslMode::verify_ca},
    {"verify-full", SslMode::verify_full},
}};
// libpq's `allow` tries plain text first: for the proxy's own connections that is never wanted.
constexpr std::array<std::pair<std::string_view, SslMode>, 5> server_modes{{
    {"disable", SslMode::disable},
    {"prefer", SslMode::prefer},
    {"require", SslMode::require},
    {"verify-ca", SslMode::verify_ca},
    {"verify-full", SslMode::verify_full},
}};
constexpr std::array<std::pair<std::string_view, AuthMode>, 2> auth_modes{{
    {"relay", AuthMode::relay},
    {"proxy", AuthMode::proxy},
}};
constexpr std::array<std::string_view, 2> protocol_names{"TLSv1.2", "TLSv1.3"};

std::vector<std::string> read_names(const Json& node, const std::string& path,
                                    std::string_view what) {
  if (!node.is_array()) fail_expected(path, "an array of " + std::string(what), node);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string item_path = element_path(path, i);
    std::string name = read_string(node[i], item_path);
    const auto seen = std::find(out.begin(), out.end(), name);
    if (seen != out.end())
      throw ConfigError(item_path, json_string(name) + " is already listed at " +
                                       element_path(path, seen - out.begin()));
    out.push_back(std::move(name));
  }
  return out;
}

std::vector<std::string> read_protocols(const Json& node, const std::string& path) {
  auto protocols = read_names(node, path, "TLS versions");
  if (protocols.empty()) fail_expected(path, "at least one of \"TLSv1.2\", \"TLSv1.3\"", node);
  for (std::size_t i = 0; i < protocols.size(); ++i)
    if (std::find(protocol_names.begin(), protocol_names.end(), protocols[i]) ==
        protocol_names.end())
      throw ConfigError(element_path(path, i),
                        "expected \"TLSv1.2\" or \"TLSv1.3\" (older versions are not offered), "
                        "got " +
                            shown_string(protocols[i]));
  return protocols;
}

void require_file(const std::string& value, const std::string& path, std::string_view why) {
  if (value.empty()) throw ConfigError(path, "required key is missing: " + std::string(why));
}

}  // namespace

ClientTls read_client_tls(const Json& node) {
  const Object object(node, "client_tls",
                      {"sslmode", "cert_file", "key_file", "ca_file", "protocols", "ciphers"});
  ClientTls tls;
  if (const Json* mode = object.find("sslmode"))
    tls.sslmode = read_enum(*mode, object.path("sslmode"), client_modes);
  for (auto [key, field] :
       {std::pair{"cert_file", &tls.cert_file}, std::pair{"key_file", &tls.key_file},
        std::pair{"ca_file", &tls.ca_file}, std::pair{"ciphers", &tls.ciphers}})
    if (const Json* value = object.find(key)) *field = read_string(*value, object.path(key));
  if (const Json* protocols = object.find("protocols"))
    tls.protocols = read_protocols(*protocols, object.path("protocols"));
  if (tls.sslmode == SslMode::disable) return tls;
  require_file(tls.cert_file, object.path("cert_file"), "client_tls.sslmode needs a certificate");
  require_file(tls.key_file, object.path("key_file"), "client_tls.sslmode needs a private key");
  if (tls.sslmode == SslMode::verify_ca || tls.sslmode == SslMode::verify_full)
    require_file(tls.ca_file, object.path("ca_file"),
                 "verify-ca and verify-full check client certificates against it");
  return tls;
}

ServerTls read_server_tls(const Json& node) {
  const Object object(node, "server_tls", {"sslmode", "ca_file", "cert_file", "key_file"});
  ServerTls tls;
  if (const Json* mode = object.find("sslmode"))
    tls.sslmode = read_enum(*mode, object.path("sslmode"), server_modes);
  for (auto [key, field] :
       {std::pair{"ca_file", &tls.ca_file}, std::pair{"cert_file", &tls.cert_file},
        std::pair{"key_file", &tls.key_file}})
    if (const Json* value = object.find(key)) *field = read_string(*value, object.path(key));
  if (tls.sslmode == SslMode::verify_ca || tls.sslmode == SslMode::verify_full)
    require_file(tls.ca_file, object.path("ca_file"),
                 "verify-ca and verify-full check the server's certificate against it");
  if (tls.cert_file.empty() != tls.key_file.empty())
    throw ConfigError(object.path(tls.cert_file.empty() ? "cert_file" : "key_file"),
                      "required key is missing: cert_file and key_file go together");
  return tls;
}

Auth read_auth(const Json& node) {
  const Object object(node, "auth",
                      {"mode", "user", "password", "database", "query", "file", "trust_users"});
  Auth auth;
  if (const Json* mode = object.find("mode")) {
    auth.mode = read_enum(*mode, object.path("mode"), auth_modes);
    auth.mode_set = true;
  }
  if (const Json* user = object.find("user")) auth.user = read_string(*user, object.path("user"));
  if (const Json* password = object.find("password"))
    auth.password = read_string(*password, object.path("password"), /*non_empty=*/false);
  if (const Json* database = object.find("database"))
    auth.database = read_string(*database, object.path("database"));
  if (const Json* query = object.find("query")) {
    auth.query = read_string(*query, object.path("query"));
    auth.query_set = true;
  }
  if (const Json* file = object.find("file")) auth.file = read_string(*file, object.path("file"));
  if (const Json* trust = object.find("trust_users"))
    auth.trust_users = read_names(*trust, object.path("trust_users"), "user names");
  return auth;
}

void settle_security(Config& config) {
  auto& auth = config.auth;
  // Relaying SCRAM cannot work when TLS runs on both legs: a client's channel binding names the
  // proxy's certificate and PostgreSQL checks it against its own.
  if (!auth.mode_set)
    auth.mode = config.client_tls.sslmode != SslMode::disable &&
                        config.server_tls.sslmode != SslMode::disable
                    ? AuthMode::proxy
                    : AuthMode::relay;
  if (auth.user.empty()) {
    auth.user = config.control.user;
    if (!auth.password) auth.password = config.control.password;
  }
}

}  // namespace seedproxy::config::detail
