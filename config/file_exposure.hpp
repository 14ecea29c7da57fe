// Whether a configuration file that holds a password can be read by other users of the host.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace seedproxy::config {

// A warning naming `path` and its mode when `config` (read from it) holds a password
// (control.password, auth.password) and the file is readable by its group or by others;
// nullopt otherwise, or when the file cannot be examined.
[[nodiscard]] std::optional<std::string> exposed_password_warning(const std::filesystem::path& path,
                                                                  const Config& config);

}  // namespace seedproxy::config
