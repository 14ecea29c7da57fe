// stat(2) on the file the configuration came from; the warning says what to run.
#include "config/file_exposure.hpp"

#include <sys/stat.h>

#include <cstdio>

namespace seedproxy::config {

std::optional<std::string> exposed_password_warning(const std::filesystem::path& path,
                                                    const Config& config) {
  const bool holds_password = config.control.password || config.auth.password;
  struct stat status {};
  if (!holds_password || ::stat(path.c_str(), &status) != 0) return std::nullopt;
  if ((status.st_mode & (S_IRGRP | S_IROTH)) == 0) return std::nullopt;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(status.st_mode & 07777));
  const char* who = (status.st_mode & S_IROTH) ? "any user of this host" : "its group";
  return "configuration file " + path.string() + " holds a password and is readable by " + who +
         " (mode " + mode + "); restrict it with chmod 600";
}

}  // namespace seedproxy::config
