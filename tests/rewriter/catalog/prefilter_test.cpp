// The pre-filter (SeedSet::might_apply) against its definition: true exactly when some live
// attribute or table name occurs in the text, ignoring ASCII case.
#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "common/text.hpp"
#include "rewriter/catalog/seed_set.hpp"

using namespace seedproxy::rewriter;

namespace {

struct Fixture {
  Catalog catalog;
  SeedSet seeds;
  std::vector<std::string> words;  // what the pre-filter looks for, lower case
};

Fixture make_fixture() {
  std::vector<Relation> relations{{"public", "account", {"id", "balance"}},
                                  {"public", "Ledger", {"id", "amount"}},
                                  {"sales", "acct", {"id", "total"}}};
  Catalog catalog(std::move(relations), 1);
  std::vector<SeedDefinition> definitions{
      {"public", "account", "risk_score", "numeric", "balance * 2", Phase::virtual_},
      {"public", "Ledger", "Amount2", "numeric", "amount * 2", Phase::virtual_},
      {"sales", "acct", "acc", "numeric", "total + 1", Phase::virtual_},
      {"public", "account", "retired", "numeric", "balance", Phase::rolled_back}};
  std::vector<std::string> errors;
  SeedSet seeds = SeedSet::compile(definitions, catalog, 1, errors);
  REQUIRE(errors.empty());
  return {std::move(catalog),
          std::move(seeds),
          {"risk_score", "account", "amount2", "ledger", "acc", "acct"}};
}

bool by_definition(std::string_view sql, const std::vector<std::string>& words) {
  for (const auto& word : words)
    if (seedproxy::text::contains_ignoring_case(sql, word)) return true;
  return false;
}

}  // namespace

TEST_CASE("pre-filter: names in any case, at any position, prefixes and rolled-back seeds") {
  const auto f = make_fixture();
  CHECK(f.seeds.might_apply("SELECT RISK_SCORE FROM x"));
  CHECK(f.seeds.might_apply("select * from \"Ledger\""));
  CHECK(f.seeds.might_apply("acc"));  // the whole text is the word
  CHECK(f.seeds.might_apply("select 1 -- ends with acct"));
  CHECK_FALSE(f.seeds.might_apply(""));
  CHECK_FALSE(f.seeds.might_apply("ac"));  // a prefix of a word is not the word
  CHECK_FALSE(f.seeds.might_apply("SELECT retired FROM pgbench_tellers"));  // rolled back
  CHECK_FALSE(f.seeds.might_apply("SELECT abalone, risk_scor FROM ledge"));
}

TEST_CASE("pre-filter: the same answer as searching for each word in turn, on random text") {
  const auto f = make_fixture();
  std::mt19937 random(20261124);
  // Fragments of the words, in both cases, and separators: whole words occur often, and so
  // do near misses.
  const std::vector<std::string> pieces{"acc",   "ACC",   "t",  "T",    "ount", "OUNT", "risk_",
                                        "Risk_", "score", "sc", "ledg", "LEDG", "er",   "amount",
                                        "2",     " ",     "\"", ".",    "_",    "x"};
  std::uniform_int_distribution<std::size_t> piece(0, pieces.size() - 1);
  int matches = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string sql;
    for (int n = std::uniform_int_distribution<int>(0, 8)(random); n > 0; --n)
      sql += pieces[piece(random)];
    const bool expected = by_definition(sql, f.words);
    matches += expected;
    INFO("text: " << sql);
    REQUIRE(f.seeds.might_apply(sql) == expected);
  }
  CHECK(matches > 2000);  // both answers occur often
  CHECK(matches < 18000);
}

TEST_CASE("pre-filter: a table that still has a rolled-back seed's column") {
  // The engine drops the column after the seed is rolled back: until the catalog no longer has
  // it, the table's '*' is spelled out without it even when no live seed is left on the table.
  Relation archive{"public", "archive", {"id", "old", "mine"}};
  archive.marked = {false, true, false};
  Catalog catalog({archive}, 1);
  std::vector<SeedDefinition> definitions{
      {"public", "archive", "old", "int", "id", Phase::rolled_back},
      {"public", "archive", "mine", "int", "id", Phase::rolled_back}};
  std::vector<std::string> errors;
  const SeedSet seeds = SeedSet::compile(definitions, catalog, 1, errors);
  REQUIRE(errors.empty());
  CHECK(seeds.might_apply("SELECT * FROM archive"));
  CHECK_FALSE(seeds.might_apply("SELECT old, mine FROM x"));  // only the table matters

  archive.marked = {false, false, false};  // "mine" and "old" are the user's own columns
  Catalog plain({archive}, 2);
  const SeedSet none = SeedSet::compile(definitions, plain, 2, errors);
  CHECK_FALSE(none.might_apply("SELECT * FROM archive"));
}
