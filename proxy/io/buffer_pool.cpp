// Per-thread pool of standard-size I/O buffers and the buffer that borrows from it.
#include "proxy/io/buffer_pool.hpp"

#include <cstring>
#include <vector>

namespace seedproxy::proxy {
namespace {

// Sessions never migrate between threads, so a thread-local free list needs no lock.
struct Pool {
  static constexpr std::size_t max_free = 256;
  std::vector<std::unique_ptr<std::byte[]>> free;

  std::unique_ptr<std::byte[]> take() {
    if (free.empty()) return std::make_unique_for_overwrite<std::byte[]>(IoBuffer::standard_size);
    auto chunk = std::move(free.back());
    free.pop_back();
    return chunk;
  }
  void give(std::unique_ptr<std::byte[]> chunk) {
    if (free.size() < max_free) free.push_back(std::move(chunk));
  }
};

Pool& thread_pool() {
  thread_local Pool pool;
  return pool;
}

}  // namespace

std::span<std::byte> IoBuffer::writable(bool large) {
  if (large && !storage_) {
    ensure_capacity(standard_size);
  } else if (end_ == capacity() && begin_ > 0) {
    // The unread tail of a message at the very end: moved to the front to make room.
    const std::size_t held = end_ - begin_;
    std::memmove(data(), data() + begin_, held);
    begin_ = 0;
    end_ = held;
  } else if (end_ == capacity()) {
    ensure_capacity(2 * capacity());  // full (the relay leaves room for what it waits for)
  }
  return {data() + end_, capacity() - end_};
}

void IoBuffer::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

void IoBuffer::ensure_capacity(std::size_t total) {
  const std::size_t held = end_ - begin_;
  if (capacity() - begin_ >= total) return;
  if (capacity() >= total) {
    std::memmove(data(), data() + begin_, held);
  } else {
    const std::size_t size = total > standard_size ? total : standard_size;
    auto bigger = size == standard_size ? thread_pool().take()
                                        : std::make_unique_for_overwrite<std::byte[]>(size);
    if (held > 0) std::memcpy(bigger.get(), data() + begin_, held);
    release();
    storage_ = std::move(bigger);
    capacity_ = size;
  }
  begin_ = 0;
  end_ = held;
}

void IoBuffer::release() noexcept {
  if (storage_ && capacity_ == standard_size) {
    try {
      thread_pool().give(std::move(storage_));
    } catch (...) {
      // Out of memory while pooling: simply free it.
    }
  }
  storage_.reset();
  capacity_ = 0;
  begin_ = end_ = 0;
}

}  // namespace seedproxy::proxy
