// I/O buffers: storage lent from per-thread pools only while bytes are in it. A small block holds
// what most reads bring; a large one is lent while a message too big for it streams through. An
// empty buffer holds nothing, so a session waiting for its peer keeps no buffer (the drained read
// takes the block when it calls recv, drained_read.hpp).
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace seedproxy::proxy {

class IoBuffer {
 public:
  // What a read gets by default: a whole pgbench -S query or answer, most OLTP statements and
  // their results fit; anything longer costs one more read, into the large buffer.
  static constexpr std::size_t small_size = 256;
  static constexpr std::size_t standard_size = 32 * 1024;

  IoBuffer() = default;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;
  ~IoBuffer() { release(); }

  [[nodiscard]] std::span<const std::byte> unread() const noexcept {
    return {storage_.get() + begin_, end_ - begin_};
  }
  // Free space after the unread bytes, borrowed from the pool when nothing is held. `large`: at
  // least the standard size (the last read filled what it was given, so more is probably
  // coming).
  [[nodiscard]] std::span<std::byte> writable(bool large = false);
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept;
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  // No room after the unread bytes: the last read filled the space writable() gave it.
  [[nodiscard]] bool full() const noexcept { return end_ == capacity_; }
  // Whether storage beyond a small block is held, and whether any is (for tests).
  [[nodiscard]] bool holds_large() const noexcept { return capacity_ > small_size; }
  [[nodiscard]] bool holds_any() const noexcept { return storage_ != nullptr; }

  // Makes room for `total` unread bytes in one piece (moving or growing as needed).
  void ensure_capacity(std::size_t total);
  // Gives the storage back when nothing unread remains.
  void release_if_empty() noexcept {
    if (empty()) release();
  }

 private:
  void release() noexcept;

  std::unique_ptr<std::byte[]> storage_;
  std::size_t capacity_ = 0;  // of storage_ (0: none)
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace seedproxy::proxy
