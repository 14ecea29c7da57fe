// Command line entry point: --config, --check-config, --help, --version.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "common/log.hpp"
#include "config/config.hpp"
#include "config/file_exposure.hpp"
#include "proxy/server/config_reload.hpp"
#include "proxy/server/server.hpp"
#include "seedproxy_version.hpp"
#include "seeds/validate/seed_check.hpp"

namespace {

constexpr const char* usage_text =
    "usage: seedproxy --config FILE        run the proxy\n"
    "       seedproxy --check-config FILE  validate FILE and exit (0 valid, 1 invalid)\n"
    "       seedproxy --help | --version\n"
    "\n"
    "seedproxy is a PostgreSQL wire-protocol proxy. Point clients at listen.host:listen.port;\n"
    "it relays every session to upstream. Configuration keys: docs/configuration.md.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "seedproxy: %s\n%s", message.c_str(), usage_text);
  return 2;
}

}  // namespace

// Which of Asio's backends this build uses (CMake's SEEDPROXY_IO_URING), for operators and for
// tests whose bounds differ by backend.
#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_DISABLE_EPOLL)
constexpr const char* io_backend = "io_uring";
#else
constexpr const char* io_backend = "epoll";
#endif

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0)) {
    std::fputs(usage_text, stdout);
    return 0;
  }
  if (argc == 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("seedproxy %s\nI/O backend: %s\n", seedproxy::version_string, io_backend);
    return 0;
  }
  if (argc != 3) return usage_error(argc < 2 ? "missing arguments" : "unexpected arguments");
  const std::string_view mode = argv[1];
  if (mode != "--config" && mode != "--check-config")
    return usage_error("unknown option " + std::string(mode));
  const std::string path = argv[2];

  seedproxy::config::Config config;
  try {
    config = seedproxy::config::load_config_file(path);
  } catch (const seedproxy::config::ConfigError& e) {
    // A file that cannot be read is already named in the message.
    if (std::string_view(e.what()).starts_with("cannot read configuration file"))
      std::fprintf(stderr, "seedproxy: %s\n", e.what());
    else
      std::fprintf(stderr, "seedproxy: %s: %s\n", path.c_str(), e.what());
    return 1;
  }
  const auto exposed = seedproxy::config::exposed_password_warning(path, config);
  if (mode == "--check-config") {
    for (const auto& warning : config.warnings)
      std::fprintf(stderr, "seedproxy: warning: %s: %s\n", path.c_str(), warning.c_str());
    if (exposed) std::fprintf(stderr, "seedproxy: warning: %s\n", exposed->c_str());
    // Seeds are validated against their live databases when those can be reached.
    const auto report = seedproxy::seeds::check_seeds(config);
    for (const auto& note : report.notes)
      std::fprintf(stderr, "seedproxy: note: %s\n", note.c_str());
    for (const auto& warning : report.warnings)
      std::fprintf(stderr, "seedproxy: warning: %s\n", warning.c_str());
    for (const auto& error : report.errors)
      std::fprintf(stderr, "seedproxy: %s: %s\n", path.c_str(), error.c_str());
    for (const auto& refusal : report.refusals)
      std::fprintf(stderr, "seedproxy: %s: %s\n", path.c_str(), refusal.c_str());
    if (!report.refusals.empty()) {
      std::fprintf(stderr, "seedproxy: %s: %zu of %zu seed(s) refused\n", path.c_str(),
                   report.refusals.size(), config.seeds.size());
      return 1;
    }
    if (!report.errors.empty()) return 1;
    std::printf(
        "seedproxy: configuration %s is valid (%zu of %zu seed(s) validated against "
        "their databases)\n",
        path.c_str(), report.validated, config.seeds.size());
    return 0;
  }

  seedproxy::proxy::apply_log_settings(config.log);
  for (const auto& warning : config.warnings)
    seedproxy::log::warning("config", path + ": " + warning);
  if (exposed) seedproxy::log::warning("config", *exposed);
  try {
    seedproxy::proxy::Server server(std::move(config), path);
    return server.run();
  } catch (const std::exception& e) {
    seedproxy::log::error("server", e.what());
    return 1;
  }
}
