// The secrets auth.mode = "proxy" checks clients against: PgBouncer's userlist (auth.file, read
// off the I/O threads at start and reload) first, then auth.query on a dedicated libpq
// connection as auth.user, run on its own thread; sessions await the answer, never block.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "proxy/auth/userlist.hpp"
#include "proxy/credentials/secret_source.hpp"
#include "seeds/control/control_connection.hpp"

namespace seedproxy::proxy {

// A loaded auth.file, with the SCRAM secrets of its plain-text passwords computed once.
struct LoadedUserlist {
  std::string path;
  auth::Userlist users;
  std::map<std::string, auth::ScramSecret, std::less<>> derived;  // plain-text entries
};

// Reads and parses auth.file; throws std::runtime_error naming the file and the first errors.
[[nodiscard]] std::shared_ptr<LoadedUserlist> load_userlist(const std::string& path);

// The mock nonce of a process: SHA-256 over a secret every proxy in front of the same database
// shares (auth.user's own stored secret), so unknown roles get the same salt from each of them
// and across restarts. nullopt when the role has no secret.
[[nodiscard]] std::optional<auth::SecretKey> derive_mock_nonce(std::string_view stored_secret);

class CredentialStore final : public SecretSource {
 public:
  // `target`: upstream and server_tls (the control connections' target); `auth` says who runs
  // the query, where, and which file to read.
  CredentialStore(seeds::ControlTarget target, const config::Auth& auth);
  ~CredentialStore() override;
  CredentialStore(const CredentialStore&) = delete;
  CredentialStore& operator=(const CredentialStore&) = delete;

  // Reads auth.file (null when unset); throws std::runtime_error when it cannot be used. Reload
  // thread or start only. install_file() then puts it in force for new logins.
  [[nodiscard]] std::shared_ptr<const LoadedUserlist> prepare_file(const config::Auth& auth);
  void install_file(std::shared_ptr<const LoadedUserlist> file) { file_.store(std::move(file)); }
  // Starts the query thread (when auth.query is in use).
  void start();
  void stop();

  boost::asio::awaitable<SecretLookup> lookup(std::string user) override;

 private:
  struct Job;
  void run();
  // The lookup with auth.query; a kept connection that turns out broken is opened again once.
  SecretLookup query(const std::string& user);
  SecretLookup query_once(const std::string& user);
  void ensure_nonce();

  seeds::ControlTarget target_;
  std::string database_;
  std::string query_;
  bool use_query_ = true;
  std::string nonce_user_;
  std::atomic<std::shared_ptr<const LoadedUserlist>> file_;
  // Random until a shared secret is known (auth.user's entry in the file, or its rolpassword
  // read by the query thread); then derived from it, once.
  std::atomic<std::shared_ptr<const auth::SecretKey>> nonce_;
  std::atomic<bool> nonce_derived_{false};

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::shared_ptr<Job>> jobs_;
  bool stopping_ = false;
  std::thread thread_;
  // Query thread only.
  std::unique_ptr<seeds::ControlConnection> connection_;
};

}  // namespace seedproxy::proxy
