// Walks a relayed message stream header by header: bodies pass through unbuffered, except for
// the message types the caller asks to see whole. Pure; the session pumps drive it.
#pragma once

#include <algorithm>
#include <bitset>
#include <cstddef>
#include <cstdint>

#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {

class RelayScanner {
 public:
  enum class Kind : std::uint8_t {
    pass,       // `length` bytes may be forwarded as they are
    message,    // an inspected message of `length` bytes is whole at the front
    need_more,  // nothing can be decided until `length` bytes are buffered from the front
    error,      // the stream is out of sync; `error` says why
    head,       // an inspected message too long to hold whole: its first `length` bytes are at
                // the front (enough for the names that open it); the rest follows as pass steps
  };

  // How much of a message longer than the whole-message limit is shown as its head.
  static constexpr std::size_t head_length = 64 * 1024;

  struct Step {
    Kind kind = Kind::need_more;
    std::size_t length = 0;
    MessageHeader header;  // valid for message, and for pass when a new message starts
    FrameError error = FrameError::none;
  };

  explicit RelayScanner(std::uint32_t max_length = default_max_message_length) noexcept
      : max_length_(max_length) {}

  // Messages of this type are delivered whole (Kind::message) instead of streamed, up to the
  // whole-message limit; a longer one is shown as its head (Kind::head), then streamed.
  void inspect(char type) noexcept {
    if (const auto t = static_cast<unsigned char>(type); t < inspect_.size()) inspect_.set(t);
  }
  // While on, every message is inspected, whatever its type (a session screening a backend's
  // login); off again, only the types asked for.
  void inspect_all(bool on) noexcept { inspect_all_ = on; }
  // Bounds what the caller must buffer for one inspected message (total bytes, header included).
  // At least head_length; by default no limit but max_length.
  void set_whole_limit(std::size_t limit) noexcept { whole_limit_ = std::max(limit, head_length); }
  void set_max_length(std::uint32_t max_length) noexcept { max_length_ = max_length; }
  [[nodiscard]] std::uint32_t max_length() const noexcept { return max_length_; }

  // Decides what to do with the front of `unread`. A pass or message step means the caller has
  // consumed `length` bytes; the next call starts after them.
  [[nodiscard]] Step next(Bytes unread) noexcept;

  // True between messages: nothing of a started message is still to come.
  [[nodiscard]] bool at_boundary() const noexcept { return skip_ == 0; }
  // Type of the most recently started message (0 before the first).
  [[nodiscard]] char last_type() const noexcept { return last_type_; }

 private:
  std::uint64_t skip_ = 0;  // body bytes of a streamed message not seen yet
  std::uint32_t max_length_;
  std::size_t whole_limit_ = static_cast<std::size_t>(-1);
  char last_type_ = 0;
  bool inspect_all_ = false;
  // Message types are ASCII: 128 bits (16 bytes in each of a session's two scanners) cover every
  // type there is; a byte above 127 is no type and is never inspected.
  std::bitset<128> inspect_;
};

}  // namespace seedproxy::protocol
