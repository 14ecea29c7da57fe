// Reading the bodies of startup-shaped packets: StartupMessage parameters and CancelRequest.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/frame_codec.hpp"

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

struct CancelKey {
  std::uint32_t backend_pid = 0;
  std::vector<std::byte> secret;
};

// Parses a whole CancelRequest packet whose header already passed decode_startup_header.
[[nodiscard]] CancelKey parse_cancel(Bytes packet);

}  // namespace seedproxy::protocol
