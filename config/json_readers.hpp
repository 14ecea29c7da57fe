// Typed, strict readers of configuration JSON values (objects with known keys, strings, integers,
// durations, enums), each failing with a ConfigError that names the field. Internal to
// seedproxy_config.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.hpp"
#include "config/strict_json.hpp"

namespace seedproxy::config::detail {

// Durations become std::chrono nanoseconds; a day bounds them far from overflow.
inline constexpr double max_duration_seconds = 86400.0;

// Optimal string alignment distance (Levenshtein plus adjacent transpositions), ignoring case.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);
// The closest candidate, if it is close enough to be a plausible typo.
[[nodiscard]] std::string_view suggestion(std::string_view typed,
                                          std::initializer_list<std::string_view> candidates);
[[nodiscard]] std::string quoted_list(std::initializer_list<std::string_view> words);
// Long strings are cut at a character boundary so the message stays one readable line.
[[nodiscard]] std::string shown_string(const std::string& text);
// What the operator wrote, for "got ...": strings are labelled unless a string was expected.
[[nodiscard]] std::string describe(const Json& node, bool string_expected = false);
[[noreturn]] void fail_expected(const std::string& path, std::string_view expected,
                                const Json& node, bool string_expected = false);

// An object whose keys must all be in `allowed`; unknown keys are refused with a suggestion.
class Object {
 public:
  Object(const Json& node, std::string path, std::initializer_list<std::string_view> allowed)
      : node_(node), path_(std::move(path)) {
    if (!node.is_object())
      fail_expected(path_, "an object with keys " + quoted_list(allowed), node);
    for (const auto& [key, value] : node.items()) {
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string message = "unknown key " + json_string(key);
      if (const std::string_view near = suggestion(key, allowed); !near.empty())
        message += " (did you mean " + json_string(near) + "?)";
      else
        message += "; the keys allowed here are " + quoted_list(allowed);
      throw ConfigError(member_path(path_, key), message);
    }
  }

  [[nodiscard]] const Json* find(std::string_view key) const {
    const auto it = node_.find(key);
    return it == node_.end() ? nullptr : &*it;
  }

  [[nodiscard]] const Json& require(std::string_view key) const {
    const Json* value = find(key);
    if (value == nullptr) throw ConfigError(path(key), "required key is missing");
    return *value;
  }

  [[nodiscard]] std::string path(std::string_view key) const { return member_path(path_, key); }

 private:
  const Json& node_;
  std::string path_;
};

[[nodiscard]] bool blank(std::string_view text) noexcept;
// Any string; NUL never survives the trip into libpq or SQL text intact, so it is refused.
[[nodiscard]] std::string read_string(const Json& node, const std::string& path,
                                      bool non_empty = true);
[[nodiscard]] bool read_bool(const Json& node, const std::string& path);
// JSON integers only: 100.0 is refused rather than guessed at.
[[nodiscard]] std::uint64_t read_integer(const Json& node, const std::string& path,
                                         std::uint64_t min, std::uint64_t max);
[[nodiscard]] double read_seconds(const Json& node, const std::string& path, bool zero_allowed);

template <typename Enum, std::size_t N>
[[nodiscard]] Enum read_enum(const Json& node, const std::string& path,
                             const std::array<std::pair<std::string_view, Enum>, N>& names) {
  std::string expected = "one of ";
  for (std::size_t i = 0; i < N; ++i) expected += (i ? ", " : "") + json_string(names[i].first);
  if (!node.is_string()) fail_expected(path, expected, node);
  const auto& text = node.get_ref<const std::string&>();
  std::string_view best;
  std::size_t best_distance = 2;  // at most one edit away
  for (const auto& [name, value] : names) {
    if (name == text) return value;
    if (const std::size_t distance = edit_distance(text.substr(0, 64), name);
        distance < best_distance) {
      best = name;
      best_distance = distance;
    }
  }
  std::string message = "expected " + expected + ", got " + shown_string(text);
  if (!best.empty()) message += " (did you mean " + json_string(best) + "?)";
  throw ConfigError(path, message);
}

}  // namespace seedproxy::config::detail
