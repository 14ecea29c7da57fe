// Leveled log lines to stderr, human-readable text or JSON lines, one write per line.
#pragma once

#include <string>
#include <string_view>

namespace seedproxy::log {

enum class Level : int { debug = 0, info = 1, warning = 2, error = 3 };

void configure(Level minimum, bool json) noexcept;

// "3 s", "0.25 s", "12.4 s": durations as people write them.
[[nodiscard]] std::string seconds_text(double seconds);
[[nodiscard]] bool enabled(Level level) noexcept;
void write(Level level, std::string_view component, std::string_view message);

inline void debug(std::string_view component, std::string_view message) {
  if (enabled(Level::debug)) write(Level::debug, component, message);
}
inline void info(std::string_view component, std::string_view message) {
  if (enabled(Level::info)) write(Level::info, component, message);
}
inline void warning(std::string_view component, std::string_view message) {
  if (enabled(Level::warning)) write(Level::warning, component, message);
}
inline void error(std::string_view component, std::string_view message) {
  if (enabled(Level::error)) write(Level::error, component, message);
}

}  // namespace seedproxy::log
