// StartupMessage parameter parsing and CancelRequest key extraction.
#include "proxy/wire/startup.hpp"

#include <algorithm>

#include "proxy/wire/body_reader.hpp"

namespace seedproxy::protocol {

std::optional<StartupParameters> parse_startup(Bytes packet, std::string& error) {
  StartupParameters out;
  out.protocol = read_u32(packet, 4);
  if (packet.empty() || packet.back() != std::byte{0}) {
    error = "invalid startup packet layout: expected terminator as last byte";
    return std::nullopt;
  }
  BodyReader reader(packet.subspan(8));
  for (;;) {
    const auto name = reader.cstring();
    if (name && name->empty() && reader.at_end()) break;  // the closing terminator
    const auto value = name && !name->empty() ? reader.cstring() : std::nullopt;
    if (!value) {
      error = "invalid startup packet layout: expected terminator as last byte";
      return std::nullopt;
    }
    if (*name == "user") out.user = *value;
    if (*name == "database") out.database = *value;
    if (*name == "application_name") out.application_name = *value;
    out.parameters.emplace_back(*name, *value);
  }
  if (out.database.empty()) out.database = out.user;
  return out;
}

std::optional<std::string> startup_setting(const StartupParameters& startup,
                                           std::string_view name) {
  std::optional<std::string> found;
  for (const auto& [key, value] : startup.parameters) {
    if (key == name) found = value;
    if (key != "options") continue;
    // Split on unescaped whitespace; a backslash takes the next character literally.
    std::vector<std::string> words(1);
    for (std::size_t i = 0; i < value.size(); ++i) {
      if (value[i] == '\\' && i + 1 < value.size()) {
        words.back() += value[++i];
      } else if (value[i] == ' ' || value[i] == '\t') {
        if (!words.back().empty()) words.emplace_back();
      } else {
        words.back() += value[i];
      }
    }
    for (std::size_t i = 0; i < words.size(); ++i) {
      std::string setting;
      if (words[i] == "-c" && i + 1 < words.size()) {
        setting = words[++i];
      } else if (words[i].starts_with("-c")) {
        setting = words[i].substr(2);
      } else if (words[i].starts_with("--")) {
        setting = words[i].substr(2);
      } else {
        continue;
      }
      const auto equals = setting.find('=');
      if (equals == std::string::npos) continue;
      std::string key_name = setting.substr(0, equals);
      std::replace(key_name.begin(), key_name.end(), '-', '_');
      if (key_name == name) found = setting.substr(equals + 1);
    }
  }
  return found;
}

CancelKey parse_cancel(Bytes packet) {
  CancelKey key;
  key.backend_pid = read_u32(packet, 8);
  const auto secret = packet.subspan(12);
  key.secret.assign(secret.begin(), secret.end());
  return key;
}

}  // namespace seedproxy::protocol
