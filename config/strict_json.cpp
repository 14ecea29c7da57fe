// Strict JSON reading for the configuration: duplicate keys refused, syntax errors at line:column.
#include "config/strict_json.hpp"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "common/text.hpp"
#include "config/config.hpp"

namespace seedproxy::config::detail {
namespace {

// Deeper than anything the schema accepts, shallow enough that nothing downstream can overflow.
constexpr std::size_t max_depth = 64;

[[nodiscard]] bool is_plain_key(std::string_view key) noexcept {
  if (key.empty()) return false;
  const auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9');
  };
  return std::all_of(key.begin(), key.end(), word) && !(key.front() >= '0' && key.front() <= '9');
}

// nlohmann's messages quote the bytes it last read, which may be malformed UTF-8.
[[nodiscard]] std::string printable(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    if (const std::size_t n = text::utf8_sequence_length(text, i); n != 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      const auto b = static_cast<unsigned char>(text[i++]);
      out += "\\x";
      out += hex[b >> 4];
      out += hex[b & 0xF];
    }
  }
  return out;
}

// `position` counts the bytes nlohmann had read, the offending one included (one past the end
// at end of input). Columns count characters, as editors do, not bytes.
[[nodiscard]] std::string location(std::string_view text, std::size_t position) {
  const std::size_t at = std::min(position == 0 ? 0 : position - 1, text.size());
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  if (line_start == 0 && text.substr(0, 3) == "\xEF\xBB\xBF")
    line_start = std::min<std::size_t>(3, at);
  const std::size_t column = 1 + text::utf8_count(text.substr(line_start, at - line_start));
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// "[json.exception.parse_error.101] parse error at line 2, column 8: syntax error while parsing
// value - unexpected '}'; expected ..." keeps only what follows " - "; nlohmann counts bytes.
[[nodiscard]] std::string syntax_detail(const nlohmann::detail::exception& error) {
  std::string_view what = error.what();
  if (const auto dash = what.find(" - "); dash != std::string_view::npos) {
    what.remove_prefix(dash + 3);
  } else if (const auto bracket = what.find("] "); bracket != std::string_view::npos) {
    what.remove_prefix(bracket + 2);
  }
  return printable(what);
}

// Builds the document like nlohmann's own DOM parser, but refuses duplicate keys (nlohmann keeps
// the last silently) and keeps the position of syntax errors (its DOM parser drops it for some).
class StrictBuilder final : public nlohmann::json_sax<Json> {
 public:
  explicit StrictBuilder(std::string_view text) : text_(text) {}

  bool null() override { return add(Json(nullptr)); }
  bool boolean(bool value) override { return add(Json(value)); }
  bool number_integer(number_integer_t value) override { return add(Json(value)); }
  bool number_unsigned(number_unsigned_t value) override { return add(Json(value)); }
  bool number_float(number_float_t value, const string_t&) override { return add(Json(value)); }
  bool string(string_t& value) override { return add(Json(std::move(value))); }
  bool binary(binary_t&) override { return false; }  // the JSON reader never produces binary
  bool start_object(std::size_t) override { return open(Json::object()); }
  bool start_array(std::size_t) override { return open(Json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }

  bool key(string_t& key) override {
    Frame& frame = frames_.back();
    if (frame.node->contains(key)) {
      error_.emplace(member_path(frame.path, key),
                     "duplicate key " + json_string(key) + "; each key may appear only once");
      return false;
    }
    frame.key = std::move(key);
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& error) override {
    error_.emplace("", location(text_, position) + ": invalid JSON: " + syntax_detail(error));
    return false;
  }

  [[nodiscard]] Json take_root() { return std::move(root_); }
  [[nodiscard]] const std::optional<ConfigError>& error() const noexcept { return error_; }

 private:
  struct Frame {
    Json* node;
    std::string path;
    std::string key;  // objects: the key whose value comes next
  };

  [[nodiscard]] std::string next_path() const {
    if (frames_.empty()) return {};
    const Frame& frame = frames_.back();
    return frame.node->is_object() ? member_path(frame.path, frame.key)
                                   : element_path(frame.path, frame.node->size());
  }

  // Only the innermost open container grows, so pointers to enclosing ones stay valid.
  Json* insert(Json value) {
    if (frames_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    Json& parent = *frames_.back().node;
    if (parent.is_object()) return &(parent[frames_.back().key] = std::move(value));
    parent.push_back(std::move(value));
    return &parent.back();
  }

  bool add(Json value) {
    insert(std::move(value));
    return true;
  }

  bool open(Json container) {
    std::string path = next_path();
    if (frames_.size() >= max_depth) {
      error_.emplace(std::move(path), "nesting deeper than " + std::to_string(max_depth) +
                                          " levels is not a configuration");
      return false;
    }
    Json* node = insert(std::move(container));
    frames_.push_back(Frame{node, std::move(path), {}});
    return true;
  }

  bool close() {
    frames_.pop_back();
    return true;
  }

  std::string_view text_;
  Json root_;
  std::vector<Frame> frames_;
  std::optional<ConfigError> error_;
};

}  // namespace

std::string member_path(std::string_view parent, std::string_view key) {
  std::string path(parent);
  if (is_plain_key(key)) {
    if (!path.empty()) path += '.';
    path += key;
  } else {
    path += '[' + json_string(key) + ']';
  }
  return path;
}

std::string element_path(std::string_view parent, std::size_t index) {
  return std::string(parent) + '[' + std::to_string(index) + ']';
}

std::string json_string(std::string_view text) {
  return Json(std::string(text)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json parse_strict_json(std::string_view text) {
  StrictBuilder builder(text);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &builder, Json::input_format_t::json,
                                  /*strict=*/true, /*ignore_comments=*/false);
  if (builder.error()) throw *builder.error();
  if (!ok) throw ConfigError("", "invalid JSON");  // every refusal above records its reason
  return builder.take_root();
}

}  // namespace seedproxy::config::detail
