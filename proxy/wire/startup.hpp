// Reading the bodies of startup-shaped packets: StartupMessage parameters and CancelRequest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {

struct StartupParameters {
  std::uint32_t protocol = protocol_3_0;
  std::vector<std::pair<std::string, std::string>> parameters;  // in wire order
  std::string user;
  std::string database;  // defaults to the user, as PostgreSQL does
  std::string application_name;
};

// Parses a whole StartupMessage (length word included). On malformed layout returns nullopt and
// sets `error` to a sentence fit for an 08P01 ErrorResponse.
[[nodiscard]] std::optional<StartupParameters> parse_startup(Bytes packet, std::string& error);

// The value a startup packet gives to server setting `name`: as its own parameter, or inside
// "options" as `-c name=value` / `--name=value` (PostgreSQL's escaping rules).
[[nodiscard]] std::optional<std::string> startup_setting(const StartupParameters& startup,
                                                         std::string_view name);

struct CancelKey {
  std::uint32_t backend_pid = 0;
  std::vector<std::byte> secret;
};

// Parses a whole CancelRequest packet whose header already passed decode_startup_header.
[[nodiscard]] CancelKey parse_cancel(Bytes packet);

}  // namespace seedproxy::protocol
