// Hot reload: on SIGHUP, on a changed configuration file and on the admin RELOAD, re-read the
// file, apply its seeds, then hand the new settings to the server. Runs on its own thread (libpq
// blocks); a configuration that fails is refused as a whole and the old one stays in force.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config/config.hpp"

namespace seedproxy::seeds {
class SnapshotRegistry;
}

namespace seedproxy::proxy {

// Sets the process log level and format from the configuration.
void apply_log_settings(const config::Log& log);

// Settings that only a restart can change, by path ("listen.port", "runtime.threads", ...),
// where `next` differs from `current`. Those keys of `next` are set back to `current`'s values.
[[nodiscard]] std::vector<std::string> keep_restart_only_settings(const config::Config& current,
                                                                  config::Config& next);

class ConfigReloader {
 public:
  // Called on the reload thread with a configuration whose seeds are applied; it puts the new
  // settings in force for new sessions.
  using Apply = std::function<void(const config::Config& next)>;
  // Called on the reload thread before the seeds are applied: loads what the new configuration
  // names (certificates, keys, auth.file). A refusal (naming the file and the reason) refuses the
  // whole reload; otherwise Apply follows.
  using Prepare = std::function<std::optional<std::string>(const config::Config& next)>;

  ConfigReloader(std::filesystem::path path, config::Config initial,
                 seeds::SnapshotRegistry& registry, Prepare prepare, Apply apply);
  ~ConfigReloader();
  ConfigReloader(const ConfigReloader&) = delete;
  ConfigReloader& operator=(const ConfigReloader&) = delete;

  // Starts the reload thread and the file watch (which does nothing while reload.watch_file is
  // off).
  void start();
  // Lets a reload in progress finish, then ends the thread. Idempotent.
  void stop();

  // Reloads soon; the outcome is logged (SIGHUP).
  void request(std::string trigger);
  // Reloads and resumes the caller on its own executor with the refusal, or nullopt when the
  // new configuration is in force (admin RELOAD).
  [[nodiscard]] boost::asio::awaitable<std::optional<std::string>> reload(std::string trigger);

  [[nodiscard]] std::uint64_t reloads_ok() const noexcept { return ok_.load(); }
  [[nodiscard]] std::uint64_t reloads_failed() const noexcept { return failed_.load(); }

 private:
  struct FileStamp {
    bool exists = false;
    std::int64_t mtime_ns = 0;
    std::int64_t size = 0;
    std::uint64_t inode = 0;
    bool operator==(const FileStamp&) const = default;
  };
  // The configuration file's stamp, followed by those of the files it names (certificates, keys,
  // CAs, auth.file): a rotated certificate is a change too.
  [[nodiscard]] std::vector<FileStamp> stamps() const;
  [[nodiscard]] static FileStamp stamp(const std::filesystem::path& path);
  // Reload thread only.
  std::optional<std::string> reload_now(const std::string& trigger);
  boost::asio::awaitable<void> watch_file();

  std::filesystem::path path_;
  config::Config current_;  // reload thread only, after start()
  seeds::SnapshotRegistry& registry_;
  Prepare prepare_;
  Apply apply_;
  std::vector<FileStamp> seen_;  // reload thread only
  std::atomic<std::uint64_t> ok_{0};
  std::atomic<std::uint64_t> failed_{0};
  boost::asio::io_context context_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_{
      context_.get_executor()};
  std::optional<boost::asio::steady_timer> timer_;
  bool stopping_ = false;  // reload thread only
  std::thread thread_;
};

}  // namespace seedproxy::proxy
