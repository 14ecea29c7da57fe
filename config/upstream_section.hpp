// Reading the upstream section: one host (as before) or several, in libpq's multi-host order.
// Internal to seedproxy_config.
#pragma once

#include "config/config.hpp"
#include "config/strict_json.hpp"

namespace seedproxy::config::detail {

[[nodiscard]] Upstream read_upstream(const Json& node);

}  // namespace seedproxy::config::detail
