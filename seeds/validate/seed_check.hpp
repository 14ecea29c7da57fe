// Validating a configuration's seeds against their live databases (`seedproxy --check-config`).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace seedproxy::seeds {

struct SeedCheckReport {
  std::vector<std::string> refusals;  // every refused seed, one sentence each (by database,
                                      // in file order within one)
  std::vector<std::string> notes;     // databases that could not be reached or queried
  std::vector<std::string> warnings;  // accepted seeds the operator should look at (their cost)
  std::vector<std::string> errors;    // what makes the file unusable although its seeds may be
                                      // fine: control credentials the server refused
  std::size_t validated = 0;          // seeds checked against a live database and accepted
};

// Connects to each database the seeds name with the control credentials (config.control at
// upstream.host:upstream.port) and validates every seed there. A database that cannot be reached
// is a note, not a refusal: its seeds were checked for syntax only (by the configuration parser).
// A server that refuses the control credentials is an error: the proxy could not run with them.
[[nodiscard]] SeedCheckReport check_seeds(const config::Config& config);

}  // namespace seedproxy::seeds
