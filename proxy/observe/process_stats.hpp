// The process's own resource use from /proc/self, for the standard process_* metrics.
#pragma once

#include <cstdint>
#include <optional>

namespace seedproxy::proxy {

struct ProcessStats {
  std::optional<double> cpu_seconds;  // user + system
  std::optional<double> resident_memory_bytes;
  std::optional<double> virtual_memory_bytes;
  std::optional<double> open_fds;
  std::optional<double> max_fds;             // the soft RLIMIT_NOFILE
  std::optional<double> start_time_seconds;  // since the Unix epoch
};

// Reads /proc/self; a value it cannot read is left empty (e.g. no /proc in a container).
[[nodiscard]] ProcessStats read_process_stats();

}  // namespace seedproxy::proxy
