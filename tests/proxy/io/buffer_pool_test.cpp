// IoBuffer: an empty buffer holds nothing, reads land in a small pooled block, a large read or a
// long partial message moves to larger storage with its unread bytes intact, and emptying it gives
// the storage back.
#include "proxy/io/buffer_pool.hpp"

#include <doctest/doctest.h>

#include <span>

using seedproxy::proxy::IoBuffer;

namespace {

// Writes `n` bytes counting up from `first` into the buffer's free space.
void fill(IoBuffer& buffer, std::size_t n, unsigned first, bool large = false) {
  auto space = buffer.writable(large);
  REQUIRE(space.size() >= n);
  for (std::size_t i = 0; i < n; ++i) space[i] = std::byte(static_cast<unsigned char>(first + i));
  buffer.commit(n);
}

bool counts_up(std::span<const std::byte> bytes, unsigned first) {
  for (std::size_t i = 0; i < bytes.size(); ++i)
    if (bytes[i] != std::byte(static_cast<unsigned char>(first + i))) return false;
  return true;
}

}  // namespace

TEST_CASE("an idle buffer holds nothing and reads into a small block") {
  IoBuffer buffer;
  CHECK_FALSE(buffer.holds_any());
  CHECK(buffer.unread().empty());
  CHECK(buffer.writable().size() == IoBuffer::small_size);
  CHECK(buffer.holds_any());
  CHECK_FALSE(buffer.holds_large());
  fill(buffer, 100, 0);
  CHECK(buffer.unread().size() == 100);
  buffer.consume(100);
  CHECK(buffer.empty());
  CHECK(buffer.holds_any());  // kept until given back
  buffer.release_if_empty();
  CHECK_FALSE(buffer.holds_any());
  CHECK(buffer.writable().size() == IoBuffer::small_size);
  CHECK_FALSE(buffer.holds_large());
}

TEST_CASE("a buffer with unread bytes keeps its storage when asked to give it back") {
  IoBuffer buffer;
  fill(buffer, 10, 5);
  buffer.release_if_empty();
  CHECK(buffer.holds_any());
  CHECK(counts_up(buffer.unread(), 5));
}

TEST_CASE("asking for a large buffer keeps the unread bytes and returns to small when drained") {
  IoBuffer buffer;
  fill(buffer, IoBuffer::small_size, 7);
  buffer.consume(10);
  const auto space = buffer.writable(true);
  CHECK(buffer.holds_large());
  CHECK(space.size() == IoBuffer::standard_size - (IoBuffer::small_size - 10));
  CHECK(counts_up(buffer.unread(), 17));
  buffer.commit(5);
  buffer.release_if_empty();  // not empty: kept
  CHECK(buffer.holds_large());
  buffer.consume(buffer.unread().size());
  buffer.release_if_empty();
  CHECK_FALSE(buffer.holds_any());
  CHECK(buffer.writable().size() == IoBuffer::small_size);
}

TEST_CASE("room for a whole message longer than the small buffer, and beyond the standard size") {
  IoBuffer buffer;
  fill(buffer, 200, 1);
  buffer.consume(100);
  buffer.ensure_capacity(1000);
  CHECK(buffer.holds_large());
  CHECK(counts_up(buffer.unread(), 101));
  CHECK(buffer.writable().size() >= 900);
  buffer.ensure_capacity(IoBuffer::standard_size * 3);
  CHECK(counts_up(buffer.unread(), 101));
  CHECK(buffer.writable().size() >= IoBuffer::standard_size * 3 - 100);
}

TEST_CASE("a small buffer with its unread bytes at the end moves them to the front") {
  IoBuffer buffer;
  fill(buffer, IoBuffer::small_size, 3);
  buffer.consume(IoBuffer::small_size - 4);
  const auto space = buffer.writable();
  CHECK_FALSE(buffer.holds_large());
  CHECK(space.size() == IoBuffer::small_size - 4);
  CHECK(counts_up(buffer.unread(), 3 + IoBuffer::small_size - 4));
}

TEST_CASE("a full buffer grows instead of offering no room") {
  IoBuffer buffer;
  fill(buffer, IoBuffer::small_size, 0);
  CHECK_FALSE(buffer.writable().empty());
  CHECK(counts_up(buffer.unread(), 0));
}
