// The shared text helpers: ASCII folding, UTF-8 counting and cutting, and the stable FNV-1a hash.
#include "common/text.hpp"

#include <doctest/doctest.h>

using namespace seedproxy::text;

TEST_CASE("ASCII folding leaves everything but A-Z alone") {
  CHECK(ascii_lower("SeLeCt \xC3\x89t\xC3\xA9_1$") == "select \xC3\x89t\xC3\xA9_1$");
  CHECK(ascii_lower('Z') == 'z');
  CHECK(ascii_lower('@') == '@');
  CHECK(ascii_lower('[') == '[');
  CHECK(equals_ignoring_case("Risk_Score", "risk_SCORE"));
  CHECK_FALSE(equals_ignoring_case("risk", "risks"));
  CHECK(contains_ignoring_case("SELECT Risk_Score FROM x", "risk_score"));
  CHECK(contains_ignoring_case("anything", ""));
  CHECK_FALSE(contains_ignoring_case("ris", "risk"));
}

TEST_CASE("UTF-8: characters counted, cuts never split one") {
  CHECK(utf8_count("") == 0);
  CHECK(utf8_count("abc") == 3);
  CHECK(utf8_count("'\xC3\xA9' ||") == 6);
  CHECK(utf8_count("h\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") == 4);  // h, é, €, 😀
  const std::string_view text = "ab\xE2\x82\xAC";                   // a, b, €
  CHECK(utf8_cut(text, 10) == text);
  CHECK(utf8_cut(text, 5) == text);
  CHECK(utf8_cut(text, 4) == "ab");
  CHECK(utf8_cut(text, 3) == "ab");
  CHECK(utf8_cut(text, 2) == "ab");
  CHECK(utf8_cut(text, 0) == "");
}

TEST_CASE("UTF-8: well-formed sequences only") {
  CHECK(utf8_sequence_length("a", 0) == 1);
  CHECK(utf8_sequence_length("\xC3\xA9", 0) == 2);
  CHECK(utf8_sequence_length("\xE2\x82\xAC", 0) == 3);
  CHECK(utf8_sequence_length("\xF0\x9F\x98\x80", 0) == 4);
  CHECK(utf8_sequence_length("\xC0\x80", 0) == 0);          // overlong
  CHECK(utf8_sequence_length("\xED\xA0\x80", 0) == 0);      // surrogate
  CHECK(utf8_sequence_length("\xF4\x90\x80\x80", 0) == 0);  // past U+10FFFF
  CHECK(utf8_sequence_length("\xE2\x82", 0) == 0);          // truncated
  CHECK(utf8_sequence_length("\x80", 0) == 0);              // lone continuation
}

TEST_CASE("FNV-1a is the standard 64-bit one") {
  CHECK(fnv1a("") == 14695981039346656037ULL);
  CHECK(fnv1a("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(fnv1a("foobar") == 0x85944171f73967e8ULL);
}
