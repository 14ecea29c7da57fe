// Reading the server_pool section, and what it needs of the rest of the configuration.
// Internal to seedproxy_config.
#pragma once

#include "config/config.hpp"
#include "config/strict_json.hpp"

namespace seedproxy::config::detail {

[[nodiscard]] ServerPool read_server_pool(const Json& node);

// A pool needs the proxy to authenticate clients itself (a backend logged in for one client is
// handed to the next only if the proxy checked that client's password) and one upstream host.
void check_server_pool(const Config& config);

}  // namespace seedproxy::config::detail
