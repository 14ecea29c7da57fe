// Checks shared by the message view tests: a view must refuse every strict prefix of a valid
// body and the body with a byte appended, and survive random bytes.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <random>

#include "proxy/wire/frame_codec.hpp"
#include "tests/proxy/wire/wire_bytes.hpp"

namespace seedproxy::test {

// `read` accepts `body` and refuses it cut at every offset and with one byte more.
template <class Read>
void refuses_every_truncation(const ByteVector& body, Read read) {
  const protocol::Bytes whole(body);
  REQUIRE(read(whole).has_value());
  for (std::size_t size = 0; size < body.size(); ++size) {
    INFO("truncated to " << size << " of " << body.size() << " bytes");
    CHECK_FALSE(read(whole.first(size)).has_value());
  }
  for (const std::byte extra : {std::byte{0}, std::byte{'x'}}) {
    auto longer = body;
    longer.push_back(extra);
    INFO("one byte more: " << static_cast<int>(extra));
    CHECK_FALSE(read(protocol::Bytes(longer)).has_value());
  }
}

// `read` never reads past the end of random bodies (ASan checks), whatever it answers.
template <class Read>
void survives_random_bodies(Read read, std::uint64_t seed = 11) {
  std::mt19937_64 random(seed);
  for (int round = 0; round < 20000; ++round) {
    ByteVector body(random() % 24);
    // Mostly small values, so counts and terminators are plausible.
    for (auto& b : body)
      b = static_cast<std::byte>(random() % 4 == 0 ? random() % 256 : random() % 3);
    // A heap block of exactly this size, so the sanitizer sees any read past the end.
    const auto exact = std::make_unique<std::byte[]>(body.size());
    std::copy(body.begin(), body.end(), exact.get());
    (void)read(protocol::Bytes(exact.get(), body.size()));
  }
}

}  // namespace seedproxy::test
