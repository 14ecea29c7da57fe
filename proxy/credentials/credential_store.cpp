// auth.file and auth.query behind one lookup: the file in memory, the query on its own thread
// with a libpq connection that is opened on first use and again after any failure.
#include "proxy/credentials/credential_store.hpp"

#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <cstdio>

#include "common/log.hpp"
#include "common/progress_signal.hpp"
#include "proxy/auth/crypto.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

std::shared_ptr<const auth::SecretKey> random_nonce() {
  auto nonce = std::make_shared<auth::SecretKey>();
  if (!auth::fill_random(nonce->data()))
    throw std::runtime_error("cannot read random bytes for the mock authentication nonce");
  return nonce;
}

std::string read_whole_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) throw std::runtime_error("cannot read auth.file \"" + path + "\"");
  std::string text(auth::max_userlist_size + 1, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), file.get()));
  return text;
}

}  // namespace

struct CredentialStore::Job {
  std::string user;
  SecretLookup result;
  Completion done;
};

std::shared_ptr<LoadedUserlist> load_userlist(const std::string& path) {
  std::string text = read_whole_file(path);
  auto parsed = auth::parse_userlist(text);
  auth::cleanse(text);  // it held whatever plain-text passwords the file has
  if (!parsed.ok()) {
    std::string why;
    for (std::size_t i = 0; i < parsed.errors.size() && i < 3; ++i)
      why += (i ? "; " : "") + describe(parsed.errors[i], path);
    throw std::runtime_error("auth.file refused: " + why);
  }
  auto out = std::make_shared<LoadedUserlist>();
  out->path = path;
  out->users = std::move(parsed.users);
  return out;
}

std::optional<auth::SecretKey> derive_mock_nonce(std::string_view stored_secret) {
  if (stored_secret.empty()) return std::nullopt;
  std::string material = "seedproxy mock authentication nonce";
  material.push_back('\0');
  material += stored_secret;
  auto nonce = auth::sha256(auth::as_bytes(material));
  auth::cleanse(material);
  return nonce;
}

CredentialStore::CredentialStore(seeds::ControlTarget target, const config::Auth& auth)
    : target_(std::move(target)),
      database_(auth.database),
      query_(auth.query),
      use_query_(auth.query_set || auth.file.empty()),
      nonce_user_(auth.user) {
  target_.user = auth.user;
  target_.password = auth.password;
  nonce_.store(random_nonce());
}

CredentialStore::~CredentialStore() { stop(); }

std::shared_ptr<const LoadedUserlist> CredentialStore::prepare_file(const config::Auth& auth) {
  if (auth.file.empty()) return nullptr;
  auto loaded = load_userlist(auth.file);
  if (!nonce_derived_.load()) {
    const auto* entry = loaded->users.find(nonce_user_);
    std::optional<auth::SecretKey> derived;
    if (entry && entry->secret.scram())
      derived = derive_mock_nonce(auth::format_scram_secret(*entry->secret.scram()).text());
    else if (entry && entry->secret.md5())
      derived = derive_mock_nonce(entry->secret.md5()->hex());
    else if (entry && entry->secret.plain_text())
      derived = derive_mock_nonce(entry->secret.plain_text()->text());
    if (derived) {
      nonce_.store(std::make_shared<const auth::SecretKey>(*derived));
      nonce_derived_.store(true);
    } else if (!use_query_) {
      log::warning("auth", "auth.file has no entry for auth.user \"" + nonce_user_ +
                               "\": unknown roles get salts that differ between restarts and "
                               "proxies; list auth.user in the file to make them stable");
    }
  }
  const auto nonce = nonce_.load();
  for (const auto& [name, entry] : loaded->users.entries())
    if (const auto* password = entry.secret.plain_text())
      if (auto secret = auth::scram_secret_for_password(password->text(), name, *nonce))
        loaded->derived.emplace(name, std::move(*secret));
  return loaded;
}

void CredentialStore::start() {
  if (!use_query_ || thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void CredentialStore::stop() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

asio::awaitable<SecretLookup> CredentialStore::lookup(std::string user) {
  if (const auto file = file_.load()) {
    if (const auto* entry = file->users.find(user)) {
      SecretLookup out;
      out.status = LookupStatus::found;
      out.secret = entry->secret;
      if (const auto derived = file->derived.find(user); derived != file->derived.end())
        out.scram_for_password = derived->second;
      out.mock_nonce = *nonce_.load();
      co_return out;
    }
  }
  if (!use_query_) {
    SecretLookup out;
    out.status = LookupStatus::no_such_role;
    out.mock_nonce = *nonce_.load();
    co_return out;
  }
  auto job = std::make_shared<Job>();
  job->user = std::move(user);
  {
    const std::lock_guard lock(mutex_);
    jobs_.push_back(job);
  }
  wake_.notify_one();
  const auto limit = std::chrono::duration<double>(target_.connect_timeout_seconds + 10.0);
  const bool answered = co_await job->done.wait(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit));
  if (!answered) {
    SecretLookup out;
    out.error = "auth.query did not answer in time";
    out.mock_nonce = *nonce_.load();
    co_return out;
  }
  co_return std::move(job->result);
}

void CredentialStore::run() {
  for (;;) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) break;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job->result = query(job->user);
    job->done.complete();
  }
  // Whoever still waits gets a refusal at once rather than at the timeout.
  const std::lock_guard lock(mutex_);
  for (auto& job : jobs_) {
    job->result.error = "seedproxy is stopping";
    job->done.complete();
  }
  jobs_.clear();
}

void CredentialStore::ensure_nonce() {
  if (nonce_derived_.load()) return;
  auto result = connection_->query("auth.query (for the mock nonce)", query_, {nonce_user_});
  if (PQntuples(result.get()) == 1 && PQnfields(result.get()) == 2 &&
      !seeds::null_at(result, 0, 1)) {
    std::string secret = seeds::text_at(result, 0, 1);
    if (auto derived = derive_mock_nonce(secret)) {
      nonce_.store(std::make_shared<const auth::SecretKey>(*derived));
      nonce_derived_.store(true);
    }
    auth::cleanse(secret);
    if (nonce_derived_.load()) return;
  }
  nonce_derived_.store(true);  // asked once; the random nonce stays
  log::warning("auth", "auth.user \"" + nonce_user_ +
                           "\" has no password: unknown roles get salts that differ between "
                           "restarts and proxies (docs/security.md)");
}

SecretLookup CredentialStore::query(const std::string& user) {
  // The connection is kept between logins, so a PostgreSQL restart (or an idle connection
  // dropped on the way) is found by the next login's query: that one failure gets a new
  // connection and the question again, rather than a refused client.
  const bool kept = connection_ != nullptr;
  auto out = query_once(user);
  if (!out.error.empty() && kept && !connection_) {
    log::info("auth", "auth.query's connection failed (" + out.error + "); connecting again");
    out = query_once(user);
  }
  return out;
}

SecretLookup CredentialStore::query_once(const std::string& user) {
  SecretLookup out;
  try {
    if (!connection_) connection_ = std::make_unique<seeds::ControlConnection>(target_, database_);
    ensure_nonce();
    out.mock_nonce = *nonce_.load();
    auto result = connection_->query("auth.query", query_, {user});
    if (PQnfields(result.get()) != 2) {
      out.error = "auth.query must return two columns (user name, secret), it returned " +
                  std::to_string(PQnfields(result.get()));
      return out;
    }
    if (PQntuples(result.get()) == 0) {
      out.status = LookupStatus::no_such_role;
      return out;
    }
    out.status = LookupStatus::found;
    if (seeds::null_at(result, 0, 1)) return out;
    std::string text = seeds::text_at(result, 0, 1);
    std::string error;
    auto secret = auth::StoredSecret::classify(text, error);
    auth::cleanse(text);
    if (!secret) {
      out.status = LookupStatus::failed;
      out.error = "the stored secret of role \"" + user + "\" is damaged: " + error;
      return out;
    }
    out.secret = std::move(*secret);
  } catch (const std::exception& e) {
    connection_.reset();  // opened again for the next login
    out = SecretLookup{};
    out.mock_nonce = *nonce_.load();
    out.error = e.what();
  }
  return out;
}

}  // namespace seedproxy::proxy
