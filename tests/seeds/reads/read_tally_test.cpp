// Unit tests of the read tally: concurrent adds sum exactly, take() resets, restore() adds back.
// No database.
#include "seeds/reads/read_tally.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using seedproxy::seeds::CountedReads;
using seedproxy::seeds::ReadTally;

namespace {

using Key = std::tuple<std::string, std::string, std::string, std::string>;

std::map<Key, std::uint64_t> by_names(const std::vector<CountedReads>& counts) {
  std::map<Key, std::uint64_t> out;
  for (const auto& c : counts) {
    const auto [it, fresh] = out.emplace(Key{c.database, c.schema, c.table, c.attribute}, c.reads);
    CHECK_MESSAGE(fresh, "take() returned one attribute twice");
    CHECK(c.reads > 0);
  }
  return out;
}

}  // namespace

TEST_CASE("a fresh tally takes nothing") {
  ReadTally tally;
  CHECK(tally.take().empty());
}

TEST_CASE("adds are summed per database, schema, table and attribute") {
  ReadTally tally;
  tally.add("db", "public", "account", "risk");
  tally.add("db", "public", "account", "risk", 4);
  tally.add("db", "public", "account", "score");
  tally.add("other", "public", "account", "risk", 2);
  tally.add("db", "audit", "account", "risk", 3);
  tally.add("db", "public", "account", "ignored", 0);
  // Names that would collide if the four were simply concatenated.
  tally.add("db", "pub", "licaccount", "risk", 7);
  const auto counts = by_names(tally.take());
  CHECK(counts.size() == 5);
  CHECK(counts.at({"db", "public", "account", "risk"}) == 5);
  CHECK(counts.at({"db", "public", "account", "score"}) == 1);
  CHECK(counts.at({"other", "public", "account", "risk"}) == 2);
  CHECK(counts.at({"db", "audit", "account", "risk"}) == 3);
  CHECK(counts.at({"db", "pub", "licaccount", "risk"}) == 7);
}

TEST_CASE("take resets the counts, and only non-zero ones come back") {
  ReadTally tally;
  tally.add("db", "public", "account", "risk", 3);
  tally.add("db", "public", "account", "score", 1);
  CHECK(tally.take().size() == 2);
  CHECK(tally.take().empty());
  tally.add("db", "public", "account", "risk");
  const auto counts = by_names(tally.take());
  CHECK(counts.size() == 1);
  CHECK(counts.at({"db", "public", "account", "risk"}) == 1);
}

TEST_CASE("restore adds counts back to what arrived meanwhile") {
  ReadTally tally;
  tally.add("db", "public", "account", "risk", 3);
  tally.add("db", "public", "account", "score", 2);
  const auto failed = tally.take();
  tally.add("db", "public", "account", "risk", 10);
  tally.restore(failed);
  const auto counts = by_names(tally.take());
  CHECK(counts.size() == 2);
  CHECK(counts.at({"db", "public", "account", "risk"}) == 13);
  CHECK(counts.at({"db", "public", "account", "score"}) == 2);
}

TEST_CASE("concurrent adds and takes from several threads sum exactly") {
  ReadTally tally;
  constexpr int threads = 6;
  constexpr int rounds = 20000;
  const std::vector<std::string> attributes{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"};
  std::vector<std::thread> adders;
  for (int t = 0; t < threads; ++t)
    adders.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i)
        tally.add("db" + std::to_string(t % 2), "public", "t",
                  attributes[static_cast<std::size_t>(i) % attributes.size()]);
    });
  // A flusher taking (and sometimes giving back) while the adders run: nothing is lost or doubled.
  std::map<Key, std::uint64_t> total;
  std::atomic<bool> adding{true};
  std::thread flusher([&] {
    int round = 0;
    while (adding.load()) {
      auto taken = tally.take();
      if (++round % 3 == 0) {
        tally.restore(taken);
        continue;
      }
      for (const auto& c : taken) total[{c.database, c.schema, c.table, c.attribute}] += c.reads;
    }
  });
  for (auto& adder : adders) adder.join();
  adding = false;
  flusher.join();
  for (const auto& c : tally.take()) total[{c.database, c.schema, c.table, c.attribute}] += c.reads;

  std::uint64_t sum = 0;
  for (const auto& [key, reads] : total) sum += reads;
  CHECK(sum == static_cast<std::uint64_t>(threads) * rounds);
  CHECK(total.size() == 2 * attributes.size());
  // Each database got 3 threads x rounds reads spread evenly over the ten attributes.
  for (const auto& [key, reads] : total) CHECK(reads == 3 * rounds / attributes.size());
}
