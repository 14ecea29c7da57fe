#include "config/server_pool_section.hpp"

#include "config/json_readers.hpp"

namespace seedproxy::config::detail {

ServerPool read_server_pool(const Json& node) {
  const Object object(
      node, "server_pool",
      {"enabled", "reset_query", "idle_timeout_seconds", "lifetime_seconds", "max_idle"});
  ServerPool pool;
  if (const Json* enabled = object.find("enabled"))
    pool.enabled = read_bool(*enabled, object.path("enabled"));
  // A blank reset query is refused as a blank string: a backend is always reset before another
  // client gets it.
  if (const Json* query = object.find("reset_query"))
    pool.reset_query = read_string(*query, object.path("reset_query"));
  if (const Json* idle = object.find("idle_timeout_seconds"))
    pool.idle_timeout_seconds = read_seconds(*idle, object.path("idle_timeout_seconds"), false);
  if (const Json* lifetime = object.find("lifetime_seconds"))
    pool.lifetime_seconds = read_seconds(*lifetime, object.path("lifetime_seconds"), false);
  if (const Json* max_idle = object.find("max_idle"))
    pool.max_idle =
        static_cast<std::uint32_t>(read_integer(*max_idle, object.path("max_idle"), 1, 100000));
  return pool;
}

void check_server_pool(const Config& config) {
  if (!config.server_pool.enabled) return;
  if (config.auth.mode != AuthMode::proxy)
    throw ConfigError("server_pool.enabled",
                      "is true but auth.mode is \"" + std::string(to_string(config.auth.mode)) +
                          "\"; a backend can be handed to another client only when the proxy "
                          "authenticates clients itself: set auth.mode to \"proxy\"");
  if (config.upstream.several())
    throw ConfigError("server_pool.enabled",
                      "is true but upstream lists several hosts; server connections are kept "
                      "only for a single upstream host");
}

}  // namespace seedproxy::config::detail
