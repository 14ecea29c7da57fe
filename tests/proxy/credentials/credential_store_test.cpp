// The credential store without a database: auth.file as the only source (lookups, plain-text
// entries turned into SCRAM secrets at load, unknown roles), the mock nonce derived from
// auth.user's entry, and a damaged file refused with its line.
#include "proxy/credentials/credential_store.hpp"

#include <doctest/doctest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

using namespace seedproxy;
using namespace seedproxy::proxy;
namespace asio = boost::asio;

namespace {

constexpr std::string_view scram_secret =
    "SCRAM-SHA-256$4096:TDZaPygSGpe1xmSZbYeiMg==$LNZ2g7bXym90vOSSZMhanxDRa1abDtcXWhOcw35kBX4=:"
    "M4CF5vlBh7dTcnKoFUDoe6vAQqlPoYcT55Yjw+3iVQo=";

struct File {
  std::string path;
  explicit File(const std::string& text) {
    char pattern[] = "/tmp/seedproxy-userlist-XXXXXX";
    const int fd = mkstemp(pattern);
    REQUIRE(fd >= 0);
    close(fd);
    path = pattern;
    std::ofstream(path) << text;
  }
  ~File() { std::filesystem::remove(path); }
};

config::Auth file_only(const std::string& path, const std::string& user = "auth_user") {
  config::Auth auth;
  auth.mode = config::AuthMode::proxy;
  auth.user = user;
  auth.file = path;
  return auth;
}

SecretLookup lookup(CredentialStore& store, const std::string& user) {
  asio::io_context io;
  auto future = asio::co_spawn(io, store.lookup(user), asio::use_future);
  io.run();
  return future.get();
}

}  // namespace

TEST_CASE("auth.file alone answers every lookup, known or not") {
  File file(
      "\"scram_user\" \"" + std::string(scram_secret) +
      "\"\n\"plain_user\" \"pencil\"\n\"md5_user\" \"md57a8f979a5ccc77e4b3150f6781dcbfbf\"\n");
  const auto auth = file_only(file.path);
  CredentialStore store(seeds::ControlTarget{}, auth);
  store.install_file(store.prepare_file(auth));

  const auto scram = lookup(store, "scram_user");
  CHECK(scram.status == LookupStatus::found);
  CHECK(scram.secret.kind() == auth::SecretKind::scram_sha_256);

  const auto plain = lookup(store, "plain_user");
  CHECK(plain.status == LookupStatus::found);
  CHECK(plain.secret.kind() == auth::SecretKind::plain_text);
  REQUIRE(plain.scram_for_password.has_value());  // computed at load, not per login
  CHECK(plain.scram_for_password->iterations == auth::default_scram_iterations);

  CHECK(lookup(store, "md5_user").secret.kind() == auth::SecretKind::md5);
  CHECK(lookup(store, "nobody").status == LookupStatus::no_such_role);
}

TEST_CASE("the mock nonce comes from auth.user's secret, so every proxy agrees") {
  File file("\"auth_user\" \"" + std::string(scram_secret) + "\"\n");
  const auto auth = file_only(file.path);
  CredentialStore one(seeds::ControlTarget{}, auth), two(seeds::ControlTarget{}, auth);
  one.install_file(one.prepare_file(auth));
  two.install_file(two.prepare_file(auth));
  const auto a = lookup(one, "ghost"), b = lookup(two, "ghost");
  CHECK(a.mock_nonce == b.mock_nonce);
  CHECK(a.mock_nonce == *derive_mock_nonce(scram_secret));
  CHECK_FALSE(derive_mock_nonce("").has_value());
  CHECK_FALSE(*derive_mock_nonce("a") == *derive_mock_nonce("b"));
}

TEST_CASE("a damaged auth.file is refused with its line, and a missing one by name") {
  File file("\"ok\" \"secret\"\n\"broken\n");
  const auto auth = file_only(file.path);
  CredentialStore store(seeds::ControlTarget{}, auth);
  CHECK_THROWS_WITH_AS((void)store.prepare_file(auth),
                       doctest::Contains((file.path + ":2").c_str()), std::runtime_error);
  CHECK_THROWS_WITH_AS((void)store.prepare_file(file_only("/nonexistent/userlist.txt")),
                       doctest::Contains("/nonexistent/userlist.txt"), std::runtime_error);
}
