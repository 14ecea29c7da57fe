// A lean read-only JSON tree for libpg_query's parse output: one pass over the text into an arena,
// strings as views into the (kept) text, objects as small key-sorted member arrays.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace seedproxy::rewriter {

struct JsonMember;

// One value of a JsonTree. Copying it is cheap (16 bytes) and copies refer to the same tree,
// which must outlive them. Object members are sorted by key (as nlohmann::json's std::map kept
// them), so walks visit children in the same order as before.
class Json {
 public:
  enum class Kind : std::uint8_t { null, boolean, integer, number, string, array, object };

  class const_iterator {
   public:
    const_iterator() = default;
    explicit const_iterator(const JsonMember* at) : at_(at) {}
    [[nodiscard]] std::string_view key() const;  // "" for array elements
    [[nodiscard]] const Json& value() const;
    const Json& operator*() const { return value(); }
    const Json* operator->() const { return &value(); }
    const_iterator& operator++();
    bool operator==(const const_iterator&) const = default;

   private:
    const JsonMember* at_ = nullptr;
  };

  Json() = default;                    // null
  [[nodiscard]] static Json array() {  // an empty array
    Json empty;
    empty.kind_ = Kind::array;
    return empty;
  }

  [[nodiscard]] Kind kind() const { return kind_; }
  [[nodiscard]] bool is_null() const { return kind_ == Kind::null; }
  [[nodiscard]] bool is_boolean() const { return kind_ == Kind::boolean; }
  [[nodiscard]] bool is_number_integer() const { return kind_ == Kind::integer; }
  [[nodiscard]] bool is_string() const { return kind_ == Kind::string; }
  [[nodiscard]] bool is_array() const { return kind_ == Kind::array; }
  [[nodiscard]] bool is_object() const { return kind_ == Kind::object; }
  [[nodiscard]] bool is_structured() const { return is_array() || is_object(); }

  // Members or elements of a container; 0 for null and 1 for any other scalar, as nlohmann had it.
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] bool empty() const { return size() == 0; }

  // Iterates a container's values (an empty range for scalars); key() names object members.
  [[nodiscard]] const_iterator begin() const;
  [[nodiscard]] const_iterator end() const;
  // The members as {key, value} pairs, for `for (const auto& [key, child] : node.items())`.
  [[nodiscard]] std::span<const JsonMember> items() const;

  // The member under `key`, or end(); never matches in an array.
  [[nodiscard]] const_iterator find(std::string_view key) const;
  [[nodiscard]] bool contains(std::string_view key) const { return find(key) != end(); }
  // The member under `key` or the element at `index`; a null value when absent.
  [[nodiscard]] const Json& operator[](std::string_view key) const;
  [[nodiscard]] const Json& operator[](std::size_t index) const;
  [[nodiscard]] const Json& front() const { return (*this)[std::size_t{0}]; }
  [[nodiscard]] const Json& back() const;

  // The member under `key` when it has the default's type, else the default.
  [[nodiscard]] int value(std::string_view key, int fallback) const;
  [[nodiscard]] bool value(std::string_view key, bool fallback) const;
  [[nodiscard]] std::string_view value(std::string_view key, const char* fallback) const;

  [[nodiscard]] std::int64_t as_integer() const { return kind_ == Kind::integer ? integer_ : 0; }
  [[nodiscard]] bool as_boolean() const { return kind_ == Kind::boolean && boolean_; }
  [[nodiscard]] std::string_view as_string() const {
    return kind_ == Kind::string ? std::string_view(text_, size_) : std::string_view();
  }
  // nlohmann-style accessors for the few types the resolver reads.
  template <class T>
  [[nodiscard]] T get() const {
    if constexpr (std::is_same_v<T, int>)
      return static_cast<int>(as_integer());
    else if constexpr (std::is_same_v<T, bool>)
      return as_boolean();
    else
      return T(as_string());
  }

  // True when this is a string equal to `text`.
  friend bool operator==(const Json& node, std::string_view text) {
    return node.is_string() && node.as_string() == text;
  }

 private:
  friend class JsonReader;

  Kind kind_ = Kind::null;
  std::uint32_t size_ = 0;  // members, elements or string bytes
  union {
    std::int64_t integer_ = 0;
    bool boolean_;
    const JsonMember* members_;
    const char* text_;
  };
};

struct JsonMember {
  std::string_view key;  // "" for array elements
  Json value;
};

inline std::string_view Json::const_iterator::key() const { return at_->key; }
inline const Json& Json::const_iterator::value() const { return at_->value; }
inline Json::const_iterator& Json::const_iterator::operator++() {
  ++at_;
  return *this;
}

// A parsed document: owns the text the strings point into and the arena of members.
class JsonTree {
 public:
  JsonTree() = default;
  JsonTree(JsonTree&&) noexcept = default;
  JsonTree& operator=(JsonTree&&) noexcept = default;

  // Reads `json` (RFC 8259, strict UTF-8 in strings); nullopt when it is not valid JSON.
  [[nodiscard]] static std::optional<JsonTree> read(std::string_view json);

  [[nodiscard]] const Json& root() const { return root_; }

 private:
  friend class JsonReader;

  std::unique_ptr<char[]> text_;
  std::vector<std::unique_ptr<JsonMember[]>> blocks_;
  Json root_;
};

}  // namespace seedproxy::rewriter
