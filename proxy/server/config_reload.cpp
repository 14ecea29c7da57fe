// Re-reading the configuration file, applying seeds, keeping restart-only settings, and the
// once-a-second file watch.
#include "proxy/server/config_reload.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "common/log.hpp"
#include "config/file_exposure.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

log::Level to_log_level(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::debug:
      return log::Level::debug;
    case config::LogLevel::info:
      return log::Level::info;
    case config::LogLevel::warning:
      return log::Level::warning;
    case config::LogLevel::error:
      return log::Level::error;
  }
  return log::Level::info;
}

std::string joined(const std::vector<std::string>& parts, std::string_view separator) {
  std::string out;
  for (const auto& part : parts) {
    if (!out.empty()) out += separator;
    out += part;
  }
  return out;
}

}  // namespace

void apply_log_settings(const config::Log& settings) {
  log::configure(to_log_level(settings.level), settings.format == config::LogFormat::json);
}

std::vector<std::string> keep_restart_only_settings(const config::Config& current,
                                                    config::Config& next) {
  std::vector<std::string> changed;
  const auto keep = [&](std::string name, auto& next_value, const auto& current_value) {
    if (next_value == current_value) return;
    changed.push_back(std::move(name));
    next_value = current_value;
  };
  // The listening socket, the I/O threads and the registry's control connections are made once.
  keep("instance", next.instance, current.instance);
  keep("listen.host", next.listen.host, current.listen.host);
  keep("listen.port", next.listen.port, current.listen.port);
  keep("upstream", next.upstream, current.upstream);
  keep("validation", next.validation, current.validation);
  keep("control.user", next.control.user, current.control.user);
  keep("control.password", next.control.password, current.control.password);
  // Sessions and control connections must encrypt alike, and the latter take it once: the files
  // it names are still re-read on every reload (same paths, new contents).
  keep("server_tls", next.server_tls, current.server_tls);
  const auto metrics_changed = next.metrics.has_value() != current.metrics.has_value() ||
                               (next.metrics && (next.metrics->host != current.metrics->host ||
                                                 next.metrics->port != current.metrics->port));
  if (metrics_changed) {
    changed.emplace_back("metrics");
    next.metrics = current.metrics;
  }
  keep("runtime.threads", next.runtime.threads, current.runtime.threads);
  // The credential store's query connection is made once; auth.file and trust_users reload.
  keep("auth.mode", next.auth.mode, current.auth.mode);
  keep("auth.user", next.auth.user, current.auth.user);
  keep("auth.password", next.auth.password, current.auth.password);
  keep("auth.database", next.auth.database, current.auth.database);
  keep("auth.query", next.auth.query, current.auth.query);
  // The engine's threads read their settings once.
  keep("materialization", next.materialization, current.materialization);
  keep("registry", next.registry, current.registry);
  return changed;
}

ConfigReloader::ConfigReloader(std::filesystem::path path, config::Config initial,
                               seeds::SnapshotRegistry& registry, Prepare prepare, Apply apply)
    : path_(std::move(path)),
      current_(std::move(initial)),
      registry_(registry),
      prepare_(std::move(prepare)),
      apply_(std::move(apply)) {
  // The files as they were read at start: a change after this point is a change.
  seen_ = stamps();
}

ConfigReloader::~ConfigReloader() { stop(); }

std::vector<ConfigReloader::FileStamp> ConfigReloader::stamps() const {
  std::vector<FileStamp> out{stamp(path_)};
  for (const std::string* file :
       {&current_.client_tls.cert_file, &current_.client_tls.key_file, &current_.client_tls.ca_file,
        &current_.server_tls.ca_file, &current_.server_tls.cert_file, &current_.server_tls.key_file,
        &current_.auth.file})
    if (!file->empty()) out.push_back(stamp(*file));
  return out;
}

ConfigReloader::FileStamp ConfigReloader::stamp(const std::filesystem::path& path) {
  struct stat info {};
  FileStamp out;
  if (::stat(path.c_str(), &info) != 0) return out;
  out.exists = true;
  out.mtime_ns = std::int64_t{info.st_mtim.tv_sec} * 1000000000 + info.st_mtim.tv_nsec;
  out.size = info.st_size;
  out.inode = info.st_ino;
  return out;
}

void ConfigReloader::start() {
  asio::co_spawn(context_, watch_file(), asio::detached);
  thread_ = std::thread([this] { context_.run(); });
}

void ConfigReloader::stop() {
  if (!thread_.joinable()) return;
  asio::post(context_, [this] {
    stopping_ = true;
    if (timer_) timer_->cancel();
  });
  guard_.reset();
  thread_.join();
}

void ConfigReloader::request(std::string trigger) {
  asio::post(context_, [this, trigger = std::move(trigger)] {
    if (!stopping_) (void)reload_now(trigger);
  });
}

asio::awaitable<std::optional<std::string>> ConfigReloader::reload(std::string trigger) {
  auto run = [](ConfigReloader* self,
                std::string why) -> asio::awaitable<std::optional<std::string>> {
    co_return self->reload_now(why);
  };
  co_return co_await asio::co_spawn(context_, run(this, std::move(trigger)), asio::use_awaitable);
}

asio::awaitable<void> ConfigReloader::watch_file() {
  timer_.emplace(context_);
  for (;;) {
    timer_->expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer_->async_wait(asio::as_tuple(asio::use_awaitable));
    if (ec || stopping_) co_return;
    // Polled even when off, so a reload that turns the watch on takes effect.
    if (!current_.reload.watch_file) continue;
    const auto now = stamps();
    // A vanished file (an editor mid-rename, a certificate being replaced) is not a new
    // configuration; wait for it to return.
    if (now == seen_ ||
        std::any_of(now.begin(), now.end(), [](const FileStamp& s) { return !s.exists; }))
      continue;
    (void)reload_now(now.front() == seen_.front() ? "a file the configuration names changed"
                                                  : "configuration file changed");
  }
}

std::optional<std::string> ConfigReloader::reload_now(const std::string& trigger) {
  // Whatever happens, the files as read now are the ones judged: no retry loop on a bad file.
  seen_ = stamps();
  const auto refuse = [&](const std::string& why) {
    failed_.fetch_add(1);
    log::error("reload", "configuration reload (" + trigger +
                             ") refused, the previous "
                             "configuration stays in force: " +
                             why);
    return std::optional<std::string>(why);
  };
  config::Config next;
  try {
    next = config::load_config_file(path_);
  } catch (const config::ConfigError& e) {
    const std::string what = e.what();
    return refuse(
        what.starts_with("cannot read configuration file") ? what : path_.string() + ": " + what);
  }
  if (auto exposed = config::exposed_password_warning(path_, next))
    log::warning("config", *exposed);
  // Before the files are loaded, so that they are loaded from the settings that stay in force.
  const auto kept = keep_restart_only_settings(current_, next);
  if (auto refused = prepare_(next)) return refuse(*refused);
  std::vector<std::string> refusals;
  try {
    refusals = registry_.apply_seeds(next.seeds);
  } catch (const std::exception& e) {
    refusals.push_back(e.what());
  }
  if (!refusals.empty()) return refuse(path_.string() + ": seeds: " + joined(refusals, "; "));
  for (const auto& warning : next.warnings) log::warning("config", path_.string() + ": " + warning);
  if (!kept.empty())
    log::warning("reload", "configuration reload (" + trigger + "): " + joined(kept, ", ") +
                               " cannot change without a restart; keeping the running value");
  apply_(next);
  current_ = std::move(next);
  seen_ = stamps();  // the new configuration may name other files
  ok_.fetch_add(1);
  log::info("reload", "configuration reloaded from " + path_.string() + " (" + trigger +
                          "): " + std::to_string(current_.seeds.size()) +
                          " seed(s) in the file; new sessions use the new settings");
  return std::nullopt;
}

}  // namespace seedproxy::proxy
