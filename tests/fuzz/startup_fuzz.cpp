// Startup packet fuzzing: parsed parameters re-encode to the packet; settings are what it says.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proxy/wire/frame_codec.hpp"
#include "proxy/wire/startup.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace seedproxy::protocol;

void append_u32(std::vector<std::byte>& out, std::uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(std::byte(value >> shift));
}

void append_cstring(std::vector<std::byte>& out, const std::string& text) {
  for (char c : text) out.push_back(std::byte(c));
  out.push_back(std::byte{0});
}

// The last value a parameter has in wire order, as PostgreSQL keeps it.
std::optional<std::string> last_value(const StartupParameters& startup, std::string_view name) {
  std::optional<std::string> found;
  for (const auto& [key, value] : startup.parameters)
    if (key == name) found = value;
  return found;
}

void check_startup(Bytes packet) {
  std::string error;
  const auto parsed = parse_startup(packet, error);
  if (!parsed) {
    FUZZ_CHECK(error.starts_with("invalid startup packet layout"), "error: " + error);
    return;
  }
  // The packet is exactly its parameters: re-encoding them gives the same bytes.
  std::vector<std::byte> again;
  append_u32(again, static_cast<std::uint32_t>(packet.size()));
  append_u32(again, parsed->protocol);
  for (const auto& [name, value] : parsed->parameters) {
    FUZZ_CHECK(!name.empty(), "a parameter without a name");
    FUZZ_CHECK(name.find('\0') == std::string::npos && value.find('\0') == std::string::npos,
               "a NUL inside a parameter");
    append_cstring(again, name);
    append_cstring(again, value);
  }
  again.push_back(std::byte{0});
  FUZZ_CHECK(std::equal(again.begin(), again.end(), packet.begin(), packet.end()),
             "parameters do not re-encode to the packet");
  FUZZ_CHECK(parsed->protocol == read_u32(packet, 4), "protocol is the second word");

  const std::string user = last_value(*parsed, "user").value_or("");
  FUZZ_CHECK(parsed->user == user, "user is the last \"user\" parameter");
  const std::string database = last_value(*parsed, "database").value_or("");
  FUZZ_CHECK(parsed->database == (database.empty() ? user : database),
             "database is the last \"database\" parameter, else the user");
  FUZZ_CHECK(parsed->application_name == last_value(*parsed, "application_name").value_or(""),
             "application_name is the last \"application_name\" parameter");

  // Without "options", a setting is its own parameter; with it, any answer will do, but it must
  // come back.
  const bool has_options = last_value(*parsed, "options").has_value();
  std::vector<std::string> names{"search_path", "application_name", "DateStyle", "user"};
  for (const auto& [name, value] : parsed->parameters) names.push_back(name);
  for (const auto& name : names) {
    const auto setting = startup_setting(*parsed, name);
    if (!has_options)
      FUZZ_CHECK(setting == last_value(*parsed, name),
                 "startup_setting(" + seedproxy::fuzz::shown(name) + ") without options");
  }
}

void check_cancel(Bytes packet) {
  const CancelKey key = parse_cancel(packet);
  FUZZ_CHECK(key.backend_pid == read_u32(packet, 8), "the pid is the third word");
  FUZZ_CHECK(key.secret.size() == packet.size() - 12 &&
                 std::equal(key.secret.begin(), key.secret.end(), packet.begin() + 12),
             "the secret is every byte after the pid");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  seedproxy::fuzz::InputReader input(data, size);
  const std::uint8_t mode = input.byte();
  const auto payload = input.rest();
  std::vector<std::byte> sent;
  if (mode & 1) {
    // The fuzzer writes the body; the header is made to fit, so parameter parsing is reached.
    constexpr std::uint32_t codes[] = {protocol_3_0, protocol_3_2, cancel_request_code,
                                       protocol_3_0 | 0xffff};
    append_u32(sent, static_cast<std::uint32_t>(8 + payload.size()));
    append_u32(sent, codes[(mode >> 1) & 3]);
  }
  for (auto b : payload) sent.push_back(std::byte(b));

  // As the session reads it: classify by the first 8 bytes, then take exactly `length` bytes.
  const Bytes bytes(sent);
  const StartupDecode decoded = decode_startup_header(bytes);
  if (decoded.status != Status::frame || bytes.size() < decoded.header.length) return 0;
  const Bytes packet = bytes.first(decoded.header.length);
  if (decoded.header.kind == StartupKind::startup) check_startup(packet);
  if (decoded.header.kind == StartupKind::cancel_request) check_cancel(packet);
  return 0;
}
