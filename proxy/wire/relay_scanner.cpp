// Header-by-header walk of a relayed stream: streamed bodies, whole inspected messages.
#include "proxy/wire/relay_scanner.hpp"

#include <algorithm>

namespace seedproxy::protocol {

RelayScanner::Step RelayScanner::next(Bytes unread) noexcept {
  Step step;
  if (skip_ > 0) {
    step.kind = Kind::pass;
    step.length = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, unread.size()));
    skip_ -= step.length;
    return step;
  }
  const MessageDecode head = decode_message_header(unread, max_length_);
  if (head.status == Status::need_more) {
    step.length = message_header_size;
    return step;
  }
  if (head.status == Status::error) {
    step.kind = Kind::error;
    step.error = head.error;
    step.header = head.header;
    return step;
  }
  step.header = head.header;
  const std::uint64_t total = head.header.total();
  const auto type = static_cast<unsigned char>(head.header.type);
  if (inspect_all_ || (type < inspect_.size() && inspect_[type])) {
    if (total > whole_limit_) {
      // Too long to hold: its head now, then the body streams like any other.
      step.length = head_length;
      if (unread.size() >= head_length) {
        step.kind = Kind::head;
        last_type_ = head.header.type;
        skip_ = total - head_length;
      }
      return step;
    }
    step.length = static_cast<std::size_t>(total);
    if (unread.size() >= total) {
      step.kind = Kind::message;
      last_type_ = head.header.type;
    }
    return step;
  }
  last_type_ = head.header.type;
  step.kind = Kind::pass;
  step.length = static_cast<std::size_t>(std::min<std::uint64_t>(total, unread.size()));
  skip_ = total - step.length;
  return step;
}

}  // namespace seedproxy::protocol
