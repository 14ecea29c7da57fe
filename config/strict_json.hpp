// Strict JSON reading for the configuration: duplicate keys refused, syntax errors at line:column.
// Internal to seedproxy_config; only config.cpp includes it.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace seedproxy::config::detail {

// Ordered, so that checks run and report in the order the operator wrote the keys.
using Json = nlohmann::ordered_json;

// Parses one JSON document. Throws ConfigError: with an empty field and a "line L, column C:"
// message for syntax errors, with the key's path for a duplicate key.
[[nodiscard]] Json parse_strict_json(std::string_view text);

// JSON paths as the errors spell them: `listen.port`, `seeds[2].entity`, `admin["odd key"]`.
[[nodiscard]] std::string member_path(std::string_view parent, std::string_view key);
[[nodiscard]] std::string element_path(std::string_view parent, std::size_t index);

// `text` as a JSON string literal; invalid UTF-8 is shown as \xNN escapes rather than thrown on.
[[nodiscard]] std::string json_string(std::string_view text);

}  // namespace seedproxy::config::detail
