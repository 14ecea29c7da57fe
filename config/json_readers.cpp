// Typed, strict readers of configuration JSON values, and the wording of their errors.
#include "config/json_readers.hpp"

#include <algorithm>
#include <limits>

#include "common/text.hpp"

namespace seedproxy::config::detail {

// ---- wording -------------------------------------------------------------------------------

// Optimal string alignment distance (Levenshtein plus adjacent transpositions), ignoring case.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = text::ascii_lower(a[i - 1]) == text::ascii_lower(b[j - 1]) ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && text::ascii_lower(a[i - 1]) == text::ascii_lower(b[j - 2]) &&
          text::ascii_lower(a[i - 2]) == text::ascii_lower(b[j - 1]))
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The closest candidate, if it is close enough to be a plausible typo.
[[nodiscard]] std::string_view suggestion(std::string_view typed,
                                          std::initializer_list<std::string_view> candidates) {
  if (typed.size() > 64) return {};  // nobody mistypes a 65-byte key; spare the quadratic work
  std::string_view best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (std::string_view candidate : candidates) {
    const std::size_t distance = edit_distance(typed, candidate);
    const std::size_t allowed = candidate.size() <= 4 ? 1 : 2;
    if (distance <= allowed && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  return best;
}

[[nodiscard]] std::string quoted_list(std::initializer_list<std::string_view> words) {
  std::string out;
  for (std::string_view word : words) {
    if (!out.empty()) out += ", ";
    out += json_string(word);
  }
  return out;
}

// Long strings are cut at a character boundary so the message stays one readable line.
[[nodiscard]] std::string shown_string(const std::string& text) {
  constexpr std::size_t shown = 60;
  if (text.size() <= shown) return json_string(text);
  return json_string(std::string(text::utf8_cut(text, shown))) + "...";
}

// What the operator wrote, for "got ...": strings are labelled unless a string was expected.
[[nodiscard]] std::string describe(const Json& node, bool string_expected) {
  switch (node.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::boolean:
      return node.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return node.dump();
    case Json::value_t::string:
      return (string_expected ? "" : "string ") + shown_string(node.get_ref<const std::string&>());
    case Json::value_t::object:
      return node.empty() ? "an empty object" : "an object";
    case Json::value_t::array:
      return node.empty() ? "an empty array" : "an array";
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return "an unexpected value";
}

[[noreturn]] void fail_expected(const std::string& path, std::string_view expected,
                                const Json& node, bool string_expected) {
  throw ConfigError(
      path, "expected " + std::string(expected) + ", got " + describe(node, string_expected));
}

// ---- typed readers -------------------------------------------------------------------------

[[nodiscard]] bool blank(std::string_view text) noexcept {
  return text.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Any string; NUL never survives the trip into libpq or SQL text intact, so it is refused.
[[nodiscard]] std::string read_string(const Json& node, const std::string& path, bool non_empty) {
  if (!node.is_string()) fail_expected(path, non_empty ? "a non-empty string" : "a string", node);
  const auto& text = node.get_ref<const std::string&>();
  if (non_empty && blank(text)) fail_expected(path, "a non-empty string", node, true);
  if (text.find('\0') != std::string::npos)
    throw ConfigError(path, "the string must not contain a NUL character");
  return text;
}

[[nodiscard]] bool read_bool(const Json& node, const std::string& path) {
  if (!node.is_boolean()) fail_expected(path, "true or false", node);
  return node.get<bool>();
}

// JSON integers only: 100.0 is refused rather than guessed at.
[[nodiscard]] std::uint64_t read_integer(const Json& node, const std::string& path,
                                         std::uint64_t min, std::uint64_t max) {
  std::optional<std::uint64_t> value;
  if (node.is_number_unsigned()) {
    value = node.get<std::uint64_t>();
  } else if (node.is_number_integer() && node.get<std::int64_t>() >= 0) {
    value = static_cast<std::uint64_t>(node.get<std::int64_t>());
  }
  if (!value || *value < min || *value > max)
    fail_expected(path, "an integer between " + std::to_string(min) + " and " + std::to_string(max),
                  node);
  return *value;
}

[[nodiscard]] double read_seconds(const Json& node, const std::string& path, bool zero_allowed) {
  const double value = node.is_number() ? node.get<double>() : -1.0;
  const bool low_ok = zero_allowed ? value >= 0.0 : value > 0.0;
  if (!node.is_number() || !low_ok || !(value <= max_duration_seconds))
    fail_expected(path,
                  std::string("a number of seconds ") +
                      (zero_allowed ? "between 0 and 86400" : "greater than 0 and at most 86400"),
                  node);
  return value;
}

}  // namespace seedproxy::config::detail
