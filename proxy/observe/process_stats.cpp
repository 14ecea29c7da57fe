// Reads CPU time, memory and descriptors of this process from /proc/self and getrlimit.
#include "proxy/observe/process_stats.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace seedproxy::proxy {
namespace {

// Seconds since the epoch at which the machine booted ("btime" in /proc/stat).
std::optional<double> boot_time() {
  std::ifstream in("/proc/stat");
  std::string key;
  while (in >> key) {
    if (key == "btime") {
      double value = 0;
      if (in >> value) return value;
      return std::nullopt;
    }
    in.ignore(1 << 16, '\n');
  }
  return std::nullopt;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);

  // /proc/self/stat: the command name may contain spaces and parentheses, so fields are counted
  // from the last ')'. After it: 3 state, ..., 14 utime, 15 stime, ..., 22 starttime, 23 vsize,
  // 24 rss (numbering of proc(5)).
  if (std::ifstream in("/proc/self/stat"); in) {
    std::string line;
    std::getline(in, line);
    if (auto close = line.rfind(')'); close != std::string::npos) {
      std::istringstream fields(line.substr(close + 2));
      std::string field;
      unsigned long long utime = 0, stime = 0, starttime = 0, vsize = 0, rss = 0;
      bool complete = false;
      for (int number = 3; fields >> field; ++number) {
        try {
          if (number == 14) utime = std::stoull(field);
          if (number == 15) stime = std::stoull(field);
          if (number == 22) starttime = std::stoull(field);
          if (number == 23) vsize = std::stoull(field);
          if (number == 24) {
            rss = std::stoull(field);
            complete = true;
            break;
          }
        } catch (const std::exception&) {
          break;
        }
      }
      if (complete && ticks > 0 && page > 0) {
        stats.cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks);
        stats.virtual_memory_bytes = static_cast<double>(vsize);
        stats.resident_memory_bytes = static_cast<double>(rss) * static_cast<double>(page);
        if (auto boot = boot_time()) {
          stats.start_time_seconds =
              *boot + static_cast<double>(starttime) / static_cast<double>(ticks);
        }
      }
    }
  }

  std::error_code error;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", error), end; !error && it != end;
       it.increment(error)) {
    ++fds;
  }
  if (!error) stats.open_fds = static_cast<double>(fds);

  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    stats.max_fds = static_cast<double>(limit.rlim_cur);
  }
  return stats;
}

}  // namespace seedproxy::proxy
