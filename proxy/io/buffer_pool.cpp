// Per-thread pool of standard-size I/O buffers and the buffer that borrows from it.
#include "proxy/io/buffer_pool.hpp"

#include <cstring>
#include <vector>

namespace seedproxy::proxy {
namespace {

// Sessions never migrate between threads, so a thread-local free list needs no lock.
template <std::size_t Size, std::size_t MaxFree>
struct Pool {
  std::vector<std::unique_ptr<std::byte[]>> free;

  std::unique_ptr<std::byte[]> take() {
    if (free.empty()) return std::make_unique_for_overwrite<std::byte[]>(Size);
    auto chunk = std::move(free.back());
    free.pop_back();
    return chunk;
  }
  void give(std::unique_ptr<std::byte[]> chunk) noexcept {
    if (free.size() >= MaxFree) return;  // freed with `chunk`
    try {
      free.push_back(std::move(chunk));
    } catch (...) {
      // Out of memory while pooling: simply freed.
    }
  }
};

// Small blocks come and go with every read that waited, two per relayed transaction: the pool
// keeps enough for that churn (the reads in flight at once on one thread), not one per session.
using SmallPool = Pool<IoBuffer::small_size, 1024>;
using StandardPool = Pool<IoBuffer::standard_size, 256>;

SmallPool& small_pool() {
  thread_local SmallPool pool;
  return pool;
}

StandardPool& standard_pool() {
  thread_local StandardPool pool;
  return pool;
}

}  // namespace

std::span<std::byte> IoBuffer::writable(bool large) {
  if (!storage_ || (large && capacity_ < standard_size)) {
    ensure_capacity(large ? standard_size : small_size);  // a pooled block, the bytes kept
  } else if (end_ == capacity_ && begin_ > 0) {
    // The unread tail of a message at the very end: moved to the front to make room.
    const std::size_t held = end_ - begin_;
    std::memmove(storage_.get(), storage_.get() + begin_, held);
    begin_ = 0;
    end_ = held;
  } else if (end_ == capacity_) {
    ensure_capacity(2 * capacity_);  // full (the relay leaves room for what it waits for)
  }
  return {storage_.get() + end_, capacity_ - end_};
}

void IoBuffer::consume(std::size_t n) noexcept {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

void IoBuffer::ensure_capacity(std::size_t total) {
  const std::size_t held = end_ - begin_;
  if (capacity_ - begin_ >= total) return;
  if (capacity_ >= total) {
    std::memmove(storage_.get(), storage_.get() + begin_, held);
  } else {
    std::size_t size = total > standard_size ? total : standard_size;
    if (total <= small_size) size = small_size;
    std::unique_ptr<std::byte[]> bigger;
    if (size == small_size) {
      bigger = small_pool().take();
    } else if (size == standard_size) {
      bigger = standard_pool().take();
    } else {
      bigger = std::make_unique_for_overwrite<std::byte[]>(size);
    }
    if (held > 0) std::memcpy(bigger.get(), storage_.get() + begin_, held);
    release();
    storage_ = std::move(bigger);
    capacity_ = size;
  }
  begin_ = 0;
  end_ = held;
}

void IoBuffer::release() noexcept {
  if (capacity_ == small_size) {
    small_pool().give(std::move(storage_));
  } else if (capacity_ == standard_size) {
    standard_pool().give(std::move(storage_));
  }
  storage_.reset();
  capacity_ = 0;
  begin_ = end_ = 0;
}

}  // namespace seedproxy::proxy
