// One pass over JSON text into an arena: no DOM of maps and strings, a few allocations in all.
#include "rewriter/parse/json_tree.hpp"

#include <algorithm>
#include <cstring>

#include "common/text.hpp"

namespace seedproxy::rewriter {
namespace {

// Braces: clang 14 does not see that the default member initializers make Json
// const-default-constructible.
const Json null_json{};

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

char* put_utf8(char* out, std::uint32_t code) {
  if (code < 0x80) {
    *out++ = static_cast<char>(code);
  } else if (code < 0x800) {
    *out++ = static_cast<char>(0xC0 | (code >> 6));
    *out++ = static_cast<char>(0x80 | (code & 0x3F));
  } else if (code < 0x10000) {
    *out++ = static_cast<char>(0xE0 | (code >> 12));
    *out++ = static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    *out++ = static_cast<char>(0x80 | (code & 0x3F));
  } else {
    *out++ = static_cast<char>(0xF0 | (code >> 18));
    *out++ = static_cast<char>(0x80 | ((code >> 12) & 0x3F));
    *out++ = static_cast<char>(0x80 | ((code >> 6) & 0x3F));
    *out++ = static_cast<char>(0x80 | (code & 0x3F));
  }
  return out;
}

}  // namespace

// The reader: an explicit stack of open containers (no recursion, so nesting depth costs heap,
// not stack), members collected on a scratch stack and moved into the arena when a container
// closes.
class JsonReader {
 public:
  JsonReader(char* text, std::size_t size, JsonTree& tree)
      : p_(text), end_(text + size), tree_(tree) {}

  bool read() {
    struct Open {
      std::size_t first;     // index of its first member in pending_
      std::string_view key;  // its own key in the enclosing object
      bool object;
    };
    std::vector<Open> open;
    std::string_view key;
    for (;;) {
      // A value starts here.
      skip_space();
      if (p_ == end_) return false;
      Json value;
      if (*p_ == '{' || *p_ == '[') {
        const bool object = *p_ == '{';
        ++p_;
        open.push_back({pending_.size(), key, object});
        skip_space();
        if (p_ != end_ && *p_ == (object ? '}' : ']')) {
          ++p_;
          value = close(object, open.back().first);
          key = open.back().key;
          open.pop_back();
        } else {
          if (object && !read_key(key)) return false;
          if (!object) key = {};
          continue;
        }
      } else if (!read_scalar(value)) {
        return false;
      }
      // A value is complete: add it to its container, closing containers that end here.
      for (;;) {
        if (open.empty()) {
          tree_.root_ = value;
          skip_space();
          return p_ == end_;
        }
        pending_.push_back({key, value});
        skip_space();
        if (p_ == end_) return false;
        const bool object = open.back().object;
        if (*p_ == ',') {
          ++p_;
          if (object) {
            skip_space();
            if (!read_key(key)) return false;
          } else {
            key = {};
          }
          break;
        }
        if (*p_ != (object ? '}' : ']')) return false;
        ++p_;
        value = close(object, open.back().first);
        key = open.back().key;
        open.pop_back();
      }
    }
  }

 private:
  void skip_space() {
    while (p_ != end_ && is_space(*p_)) ++p_;
  }

  // `"key"` and the colon after it.
  bool read_key(std::string_view& key) {
    if (p_ == end_ || *p_ != '"' || !read_string(key)) return false;
    skip_space();
    if (p_ == end_ || *p_ != ':') return false;
    ++p_;
    return true;
  }

  bool read_scalar(Json& value) {
    const char c = *p_;
    if (c == '"') {
      std::string_view text;
      if (!read_string(text)) return false;
      value.kind_ = Json::Kind::string;
      value.size_ = static_cast<std::uint32_t>(text.size());
      value.text_ = text.data();
      return true;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return read_number(value);
    const auto literal = [&](std::string_view word) {
      if (static_cast<std::size_t>(end_ - p_) < word.size() ||
          std::memcmp(p_, word.data(), word.size()) != 0)
        return false;
      p_ += word.size();
      return true;
    };
    if (literal("true")) {
      value.kind_ = Json::Kind::boolean;
      value.boolean_ = true;
      return true;
    }
    if (literal("false")) {
      value.kind_ = Json::Kind::boolean;
      value.boolean_ = false;
      return true;
    }
    return literal("null");
  }

  bool read_number(Json& value) {
    bool negative = false;
    if (*p_ == '-') {
      negative = true;
      ++p_;
    }
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
    std::uint64_t magnitude = 0;
    int digits = 0;
    if (*p_ == '0') {
      ++p_;
      digits = 1;
    } else {
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
        magnitude = magnitude * 10 + static_cast<std::uint64_t>(*p_ - '0');
        ++digits;
        ++p_;
      }
    }
    bool integer = digits <= 18;
    if (p_ != end_ && *p_ == '.') {
      integer = false;
      ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (p_ == end_ || *p_ < '0' || *p_ > '9') return false;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    }
    if (integer) {
      value.kind_ = Json::Kind::integer;
      const auto signed_value = static_cast<std::int64_t>(magnitude);
      value.integer_ = negative ? -signed_value : signed_value;
    } else {
      value.kind_ = Json::Kind::number;  // not read by the resolver: kept as a kind only
    }
    return true;
  }

  // Reads a string starting at its opening quote; escapes are decoded in place (the decoded
  // text is never longer than the escaped one).
  bool read_string(std::string_view& out) {
    char* const begin = ++p_;
    char* write = nullptr;  // set once the first escape is seen
    while (p_ != end_) {
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        out = std::string_view(begin, static_cast<std::size_t>((write ? write : p_) - begin));
        ++p_;
        return true;
      }
      if (c < 0x20) return false;
      if (c == '\\') {
        if (!write) write = p_;
        if (!read_escape(write)) return false;
        continue;
      }
      std::size_t n = 1;
      if (c >= 0x80) {
        n = text::utf8_sequence_length(std::string_view(p_, static_cast<std::size_t>(end_ - p_)),
                                       0);
        if (n == 0) return false;
      }
      if (write) {
        std::memmove(write, p_, n);
        write += n;
      }
      p_ += n;
    }
    return false;
  }

  bool read_escape(char*& write) {
    if (end_ - p_ < 2) return false;
    const char c = p_[1];
    p_ += 2;
    switch (c) {
      case '"':
      case '\\':
      case '/':
        *write++ = c;
        return true;
      case 'b':
        *write++ = '\b';
        return true;
      case 'f':
        *write++ = '\f';
        return true;
      case 'n':
        *write++ = '\n';
        return true;
      case 'r':
        *write++ = '\r';
        return true;
      case 't':
        *write++ = '\t';
        return true;
      case 'u':
        break;
      default:
        return false;
    }
    std::uint32_t code = 0;
    if (!read_hex4(code)) return false;
    if (code >= 0xD800 && code <= 0xDBFF) {  // a high surrogate needs its low half
      std::uint32_t low = 0;
      if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return false;
      p_ += 2;
      if (!read_hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
    } else if (code >= 0xDC00 && code <= 0xDFFF) {
      return false;
    }
    write = put_utf8(write, code);
    return true;
  }

  bool read_hex4(std::uint32_t& code) {
    if (end_ - p_ < 4) return false;
    for (int i = 0; i < 4; ++i) {
      const int digit = hex_value(p_[i]);
      if (digit < 0) return false;
      code = code * 16 + static_cast<std::uint32_t>(digit);
    }
    p_ += 4;
    return true;
  }

  // Moves the members of a closing container from pending_ into the arena.
  Json close(bool object, std::size_t first) {
    Json value;
    value.kind_ = object ? Json::Kind::object : Json::Kind::array;
    const std::size_t count = pending_.size() - first;
    value.size_ = static_cast<std::uint32_t>(count);
    if (count == 0) return value;
    JsonMember* members = allocate(count);
    std::copy(pending_.begin() + static_cast<std::ptrdiff_t>(first), pending_.end(), members);
    pending_.resize(first);
    if (object)  // libpg_query's objects hold a handful of keys: insertion sort is enough
      for (std::size_t i = 1; i < count; ++i)
        for (std::size_t j = i; j > 0 && members[j].key < members[j - 1].key; --j)
          std::swap(members[j], members[j - 1]);
    value.members_ = members;
    return value;
  }

  JsonMember* allocate(std::size_t count) {
    if (free_ < count) {
      const std::size_t size = std::max(count, next_block_);
      next_block_ *= 2;
      tree_.blocks_.push_back(std::make_unique<JsonMember[]>(size));
      cursor_ = tree_.blocks_.back().get();
      free_ = size;
    }
    JsonMember* out = cursor_;
    cursor_ += count;
    free_ -= count;
    return out;
  }

 public:
  void first_block(std::size_t members) { next_block_ = std::max<std::size_t>(members, 16); }

 private:
  char* p_;
  char* const end_;
  JsonTree& tree_;
  std::vector<JsonMember> pending_;
  JsonMember* cursor_ = nullptr;
  std::size_t free_ = 0;
  std::size_t next_block_ = 64;
};

std::optional<JsonTree> JsonTree::read(std::string_view json) {
  JsonTree tree;
  tree.text_ = std::make_unique_for_overwrite<char[]>(json.size() + 1);
  std::memcpy(tree.text_.get(), json.data(), json.size());
  tree.text_[json.size()] = '\0';
  JsonReader reader(tree.text_.get(), json.size(), tree);
  // libpg_query writes about one value per 14 bytes; one block usually holds the whole tree.
  reader.first_block(json.size() / 12);
  if (!reader.read()) return std::nullopt;
  return tree;
}

std::size_t Json::size() const {
  switch (kind_) {
    case Kind::null:
      return 0;
    case Kind::array:
    case Kind::object:
      return size_;
    default:
      return 1;
  }
}

Json::const_iterator Json::begin() const {
  return const_iterator(is_array() || is_object() ? members_ : nullptr);
}

Json::const_iterator Json::end() const {
  return const_iterator(is_array() || is_object() ? members_ + size_ : nullptr);
}

std::span<const JsonMember> Json::items() const {
  if (!is_object() && !is_array()) return {};
  return {members_, size_};
}

Json::const_iterator Json::find(std::string_view key) const {
  if (!is_object()) return end();
  for (const JsonMember* m = members_; m != members_ + size_; ++m)
    if (m->key == key) return const_iterator(m);
  return end();
}

const Json& Json::operator[](std::string_view key) const {
  const auto it = find(key);
  return it != end() ? *it : null_json;
}

const Json& Json::operator[](std::size_t index) const {
  return (is_array() || is_object()) && index < size_ ? members_[index].value : null_json;
}

const Json& Json::back() const {
  return (is_array() || is_object()) && size_ > 0 ? members_[size_ - 1].value : null_json;
}

int Json::value(std::string_view key, int fallback) const {
  const auto it = find(key);
  return it != end() && it->is_number_integer() ? static_cast<int>(it->as_integer()) : fallback;
}

bool Json::value(std::string_view key, bool fallback) const {
  const auto it = find(key);
  return it != end() && it->is_boolean() ? it->as_boolean() : fallback;
}

std::string_view Json::value(std::string_view key, const char* fallback) const {
  const auto it = find(key);
  return it != end() && it->is_string() ? it->as_string() : std::string_view(fallback);
}

}  // namespace seedproxy::rewriter
