// I/O buffers lent from a per-thread pool: a session holds buffer memory only while bytes are in
// flight, so idle connections cost almost nothing.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

namespace seedproxy::proxy {

class IoBuffer {
 public:
  static constexpr std::size_t standard_size = 32 * 1024;

  IoBuffer() = default;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;
  ~IoBuffer() { release(); }

  [[nodiscard]] std::span<const std::byte> unread() const noexcept {
    return {storage_.get() + begin_, end_ - begin_};
  }
  // Free space after the unread bytes; borrows storage from the pool when none is held.
  [[nodiscard]] std::span<std::byte> writable();
  void commit(std::size_t n) noexcept { end_ += n; }
  void consume(std::size_t n) noexcept;
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }

  // Makes room for `total` unread bytes in one piece (moving or growing as needed).
  void ensure_capacity(std::size_t total);
  // Gives the storage back to the pool when nothing unread remains.
  void release_if_empty() noexcept {
    if (empty()) release();
  }

 private:
  void release() noexcept;

  std::unique_ptr<std::byte[]> storage_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace seedproxy::proxy
