// The upstream section: {"host", "port"} or {"hosts": [...], "target_session_attrs", ...}.
#include "config/upstream_section.hpp"

#include <algorithm>
#include <array>

#include "config/json_readers.hpp"

namespace seedproxy::config::detail {

namespace {

constexpr std::array<std::pair<std::string_view, TargetSessionAttrs>, 2> attrs_names{{
    {"read-write", TargetSessionAttrs::read_write},
    {"any", TargetSessionAttrs::any},
}};

constexpr std::size_t max_hosts = 16;

[[nodiscard]] std::uint16_t read_port(const Json& node, const std::string& path) {
  return static_cast<std::uint16_t>(read_integer(node, path, 1, 65535));
}

// One element of "hosts": an object {"host", "port"}; the port defaults to upstream.port.
[[nodiscard]] Endpoint read_host(const Json& node, const std::string& path,
                                 std::uint16_t default_port) {
  const Object object(node, path, {"host", "port"});
  Endpoint endpoint{read_string(object.require("host"), object.path("host")), default_port};
  if (const Json* port = object.find("port")) endpoint.port = read_port(*port, object.path("port"));
  return endpoint;
}

[[nodiscard]] std::vector<Endpoint> read_hosts(const Json& node, const std::string& path,
                                               std::uint16_t default_port) {
  if (!node.is_array() || node.empty())
    fail_expected(path, "a non-empty array of {\"host\", \"port\"} objects", node);
  if (node.size() > max_hosts)
    throw ConfigError(path, "lists " + std::to_string(node.size()) + " hosts; at most " +
                                std::to_string(max_hosts) + " are allowed");
  std::vector<Endpoint> hosts;
  for (std::size_t i = 0; i < node.size(); ++i) {
    const std::string item_path = element_path(path, i);
    Endpoint host = read_host(node[i], item_path, default_port);
    const auto seen = std::find(hosts.begin(), hosts.end(), host);
    if (seen != hosts.end())
      throw ConfigError(item_path, endpoint_text(host) + " is already listed at " +
                                       element_path(path, seen - hosts.begin()));
    hosts.push_back(std::move(host));
  }
  return hosts;
}

}  // namespace

Upstream read_upstream(const Json& node) {
  const Object object(node, "upstream",
                      {"host", "port", "hosts", "target_session_attrs", "check_seconds"});
  Upstream upstream;
  std::uint16_t port = upstream.hosts.front().port;
  if (const Json* value = object.find("port")) port = read_port(*value, object.path("port"));
  const Json* host = object.find("host");
  const Json* hosts = object.find("hosts");
  if (host && hosts)
    throw ConfigError("upstream.hosts",
                      "cannot be combined with upstream.host; list every host in upstream.hosts");
  if (hosts) {
    upstream.hosts = read_hosts(*hosts, object.path("hosts"), port);
  } else {
    upstream.hosts.front().port = port;
    if (host) upstream.hosts.front().host = read_string(*host, object.path("host"));
  }
  if (const Json* attrs = object.find("target_session_attrs"))
    upstream.target_session_attrs =
        read_enum(*attrs, object.path("target_session_attrs"), attrs_names);
  if (const Json* check = object.find("check_seconds"))
    upstream.check_seconds = read_seconds(*check, object.path("check_seconds"), false);
  return upstream;
}

}  // namespace seedproxy::config::detail

namespace seedproxy::config {

std::string_view to_string(TargetSessionAttrs attrs) noexcept {
  return attrs == TargetSessionAttrs::any ? "any" : "read-write";
}

std::string endpoint_text(const Endpoint& endpoint) {
  return endpoint.host + ":" + std::to_string(endpoint.port);
}

std::string endpoint_text(const Upstream& upstream) {
  std::string out;
  for (const auto& host : upstream.hosts) {
    if (!out.empty()) out += ',';
    out += endpoint_text(host);
  }
  return out;
}

}  // namespace seedproxy::config
