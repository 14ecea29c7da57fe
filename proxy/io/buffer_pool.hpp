// I/O buffers: a small inline buffer a session reads into while it waits, and a large one lent
// from a per-thread pool only while a message too big for the small one streams through.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>

namespace seedproxy::proxy {

class IoBuffer {
 public:
  // What a pump waits with: a whole pgbench -S query or answer, most OLTP statements and their
  // results fit; anything longer costs one more read, into the large buffer.
  static constexpr std::size_t small_size = 256;
  static constexpr std::size_t standard_size = 32 * 1024;

  IoBuffer() = default;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;
  ~IoBuffer() { release(); }

  [[nodiscard]] std::span<const std::byte> unread() const noexcept {
    return {data() + begin_, end_ - begin_};
  }
  // Free space after the unread bytes. `large`: at least the standard size (the last read filled
  // what it was given, so more is probably coming), borrowed from the pool.
  [[nodiscard]] std::span<std::byte> writable(bool large = false);
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept;
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  // No room after the unread bytes: the last read filled the space writable() gave it.
  [[nodiscard]] bool full() const noexcept { return end_ == capacity(); }
  // Whether pooled storage is held (for tests).
  [[nodiscard]] bool holds_large() const noexcept { return storage_ != nullptr; }

  // Makes room for `total` unread bytes in one piece (moving or growing as needed).
  void ensure_capacity(std::size_t total);
  // Gives the pooled storage back when nothing unread remains; reads go to the small buffer again.
  void release_if_empty() noexcept {
    if (empty()) release();
  }

 private:
  [[nodiscard]] std::byte* data() noexcept { return storage_ ? storage_.get() : small_.data(); }
  [[nodiscard]] const std::byte* data() const noexcept {
    return storage_ ? storage_.get() : small_.data();
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return storage_ ? capacity_ : small_size; }
  void release() noexcept;

  std::unique_ptr<std::byte[]> storage_;
  std::size_t capacity_ = 0;  // of storage_
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
  std::array<std::byte, small_size> small_;
};

}  // namespace seedproxy::proxy
