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

std::span<std::byte> IoBuffer::writable() {
  if (!storage_) {
    storage_ = thread_pool().take();
    capacity_ = standard_size;
    begin_ = end_ = 0;
  }
  if (end_ == capacity_ && begin_ > 0) ensure_capacity(end_ - begin_);
  return {storage_.get() + end_, capacity_ - end_};
}

void IoBuffer::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

void IoBuffer::ensure_capacity(std::size_t total) {
  const std::size_t held = end_ - begin_;
  if (storage_ && capacity_ - begin_ >= total) return;
  if (storage_ && capacity_ >= total) {
    std::memmove(storage_.get(), storage_.get() + begin_, held);
  } else {
    const std::size_t size = total > standard_size ? total : standard_size;
    auto bigger = size == standard_size ? thread_pool().take()
                                        : std::make_unique_for_overwrite<std::byte[]>(size);
    if (held > 0) std::memcpy(bigger.get(), storage_.get() + begin_, held);
    release();
    storage_ = std::move(bigger);
    capacity_ = size;
  }
  begin_ = 0;
  end_ = held;
}

void IoBuffer::release() noexcept {
  if (!storage_) return;
  if (capacity_ == standard_size) {
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
