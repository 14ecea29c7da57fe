// Base64 as SCRAM uses it, secret buffers and constant-time comparison.
#include "proxy/auth/base64.hpp"

#include <doctest/doctest.h>

#include <string>

#include "proxy/auth/secret_bytes.hpp"

using namespace seedproxy::auth;

TEST_CASE("base64 round-trips every length and matches RFC 4648's vectors") {
  CHECK(base64_encode(as_bytes("")) == "");
  CHECK(base64_encode(as_bytes("f")) == "Zg==");
  CHECK(base64_encode(as_bytes("fo")) == "Zm8=");
  CHECK(base64_encode(as_bytes("foo")) == "Zm9v");
  CHECK(base64_encode(as_bytes("foobar")) == "Zm9vYmFy");
  CHECK(base64_encode(as_bytes("n,,")) == "biws");
  CHECK(base64_encode(as_bytes("y,,")) == "eSws");
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t length = 0; length <= all.size(); ++length) {
    const auto input = as_bytes(std::string_view(all).substr(0, length));
    const auto decoded = base64_decode(base64_encode(input));
    REQUIRE(decoded);
    CHECK(std::equal(decoded->begin(), decoded->end(), input.begin(), input.end()));
  }
}

TEST_CASE("base64 decoding is strict about alphabet, padding and length") {
  for (std::string_view bad : {"Zg", "Zg=", "Z===", "====", "Zg=a", "Zm 9v", "Zm9v\n", "Zm9-",
                               "Zm9_", "=Zm9", "Zg==Zg==", "Zm9v=", "\xff\xff\xff\xff"})
    CHECK_MESSAGE(!base64_decode(bad), bad);
  CHECK(base64_decode("")->empty());
  SecretKey key;
  CHECK_FALSE(base64_decode_key("Zm9v", key));  // 3 bytes, not 32
  CHECK(base64_decode_key("pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=", key));
}

TEST_CASE("secret buffers copy deeply and compare in constant time by content") {
  SecretBytes a(std::string_view("hunter2"));
  SecretBytes b = a;
  CHECK(b.text() == "hunter2");
  SecretBytes c(std::move(a));
  CHECK(c.text() == "hunter2");
  CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is documented as empty
  b = SecretBytes(std::string_view("other"));
  CHECK(b.text() == "other");
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK(constant_time_equal("", ""));
  SecretKey k1, k2;
  CHECK(k1 == k2);
  k2.data()[31] = std::byte{1};
  CHECK_FALSE(k1 == k2);
  CHECK_FALSE(k1.assign(as_bytes("short")));
}

TEST_CASE("cleanse wipes a string's bytes") {
  std::string text = "plain text password";
  cleanse(text);
  CHECK(text == std::string(19, '\0'));
}
