// Reading SCRAM messages' comma-separated `a=value` attributes (RFC 5802 §7), with PostgreSQL's
// wording for what is wrong, and the shared limits on SCRAM message sizes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace seedproxy::auth {

// No SCRAM message of a real client or server comes near this (libpq's longest, a
// client-final-message with channel binding, is about 250 bytes).
inline constexpr std::size_t max_scram_message_length = 8192;
// Raw nonce bytes before base64, as PostgreSQL's SCRAM_RAW_NONCE_LEN.
inline constexpr std::size_t scram_raw_nonce_size = 18;

// printable = %x21-2B / %x2D-7E (printable ASCII except ","); the empty string is not printable.
[[nodiscard]] bool is_scram_printable(std::string_view text) noexcept;
// One character for an error message: 'c' when printable, else 0xNN (PostgreSQL's sanitize_char).
[[nodiscard]] std::string sanitize_char(char c);
// At most 30 characters, '?' for anything unprintable (PostgreSQL's sanitize_str).
[[nodiscard]] std::string sanitize_str(std::string_view text);

// A cursor over one SCRAM message. Every read either consumes a whole attribute (and the comma
// after it) or fails with a detail sentence, leaving the cursor where it was.
class AttributeReader {
 public:
  explicit AttributeReader(std::string_view text) noexcept : text_(text) {}

  // The value of attribute `name`, which must come next.
  [[nodiscard]] std::optional<std::string_view> read(char name, std::string& detail);

  struct Attribute {
    char name = 0;
    std::string_view value;
  };
  // Whatever attribute comes next: an ASCII letter, '=', a value.
  [[nodiscard]] std::optional<Attribute> read_any(std::string& detail);

  [[nodiscard]] bool at_end() const noexcept { return at_ >= text_.size(); }
  // The next character, or '\0' at the end.
  [[nodiscard]] char peek() const noexcept { return at_end() ? '\0' : text_[at_]; }
  [[nodiscard]] std::size_t position() const noexcept { return at_; }
  [[nodiscard]] std::string_view rest() const noexcept { return text_.substr(at_); }
  void skip(std::size_t count) noexcept {
    at_ = at_ + count > text_.size() ? text_.size() : at_ + count;
  }

 private:
  std::string_view value_from(std::size_t start) noexcept;

  std::string_view text_;
  std::size_t at_ = 0;
};

}  // namespace seedproxy::auth
