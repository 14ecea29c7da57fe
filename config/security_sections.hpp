// Reading the client_tls, server_tls and auth sections, and the checks that tie them together.
// Internal to seedproxy_config.
#pragma once

#include "config/config.hpp"
#include "config/strict_json.hpp"

namespace seedproxy::config::detail {

[[nodiscard]] ClientTls read_client_tls(const Json& node);
[[nodiscard]] ServerTls read_server_tls(const Json& node);
[[nodiscard]] Auth read_auth(const Json& node);
// Defaults that depend on other sections (auth.mode, auth.user) and the rules between them.
void settle_security(Config& config);

}  // namespace seedproxy::config::detail
