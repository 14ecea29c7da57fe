// Property checks and input slicing shared by the fuzz targets (libFuzzer and the replay driver).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

namespace seedproxy::fuzz {

// A broken property is a crash on purpose: libFuzzer then saves the input, and the replay driver
// (and CTest) fails on it.
[[noreturn]] inline void fail(const char* file, int line, const char* condition,
                              const std::string& detail) {
  std::fprintf(stderr, "%s:%d: fuzz property failed: %s\n", file, line, condition);
  if (!detail.empty()) std::fprintf(stderr, "  %s\n", detail.c_str());
  std::fflush(stderr);
  std::abort();
}

// Reads control values off the front of a fuzz input; what is left is the payload. Past the end
// it yields zeros, so every input, however short, is a valid one.
class InputReader {
 public:
  InputReader(const std::uint8_t* data, std::size_t size) : rest_(data, size) {}

  std::uint8_t byte() {
    if (rest_.empty()) return 0;
    const std::uint8_t out = rest_.front();
    rest_ = rest_.subspan(1);
    return out;
  }
  std::uint16_t u16() { return static_cast<std::uint16_t>((byte() << 8) | byte()); }
  [[nodiscard]] std::span<const std::uint8_t> rest() const { return rest_; }

 private:
  std::span<const std::uint8_t> rest_;
};

// Bytes shown in a failure message: printable ASCII as is, the rest as \xNN, bounded.
inline std::string shown(std::string_view bytes, std::size_t limit = 200) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
      out += escaped;
    }
  }
  if (bytes.size() > limit) out += "...";
  return out;
}

}  // namespace seedproxy::fuzz

#define FUZZ_CHECK(condition, detail)                                                  \
  do {                                                                                 \
    if (!(condition)) ::seedproxy::fuzz::fail(__FILE__, __LINE__, #condition, detail); \
  } while (0)
