// The PostgreSQL that tests/seeds/run_with_postgres.py started for the seeds tests: where it
// listens, from the environment that script sets.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <string>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds::testing {

inline std::string env(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value ? value : fallback;
}

// A control target as the test server's superuser.
inline ControlTarget test_target() {
  ControlTarget t;
  t.hosts = {{env("SEEDPROXY_TEST_PGHOST", "127.0.0.1"),
              static_cast<std::uint16_t>(std::stoi(env("SEEDPROXY_TEST_PGPORT", "5432")))}};
  t.user = "postgres";
  return t;
}

}  // namespace seedproxy::seeds::testing
