// The shape cache: texts that differ only in plain-value constants share one rewrite, served by
// splicing their constants into a template. Every rewrite the cache serves must be byte for byte
// the rewrite the rewriter makes of that text, splice map and reads included; texts whose
// constants may change the rewrite (positional ORDER BY, type modifiers, statements the proxy
// reads) must not share.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "rewriter/parse/pg_parser.hpp"
#include "rewriter/splice/rewrite_cache.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "tests/rewriter/case_file.hpp"

namespace {

using namespace seedproxy::rewriter;
using Outcome = RewriteResult::Outcome;

std::shared_ptr<const CachedRewrite> cached(RewriteResult result) {
  auto entry = std::make_shared<CachedRewrite>();
  entry->outcome = result.outcome;
  entry->sql = std::move(result.sql);
  entry->error = std::move(result.error);
  entry->refusal_marker = std::move(result.refusal_marker);
  entry->splices = std::move(result.splices);
  for (const auto& read : result.reads)
    entry->reads.push_back({read.attribute->schema, read.attribute->table, read.attribute->name});
  return entry;
}

std::string reads_of(const CachedRewrite& rewrite) {
  std::string out;
  for (const auto& read : rewrite.reads)
    out += read.schema + "." + read.table + "." + read.attribute + ";";
  return out;
}

std::string splices_of(const CachedRewrite& rewrite) {
  std::string out;
  for (const auto& s : rewrite.splices)
    out += std::to_string(s.client_begin) + "-" + std::to_string(s.client_end) + ":" +
           std::to_string(s.length) + "@" + std::to_string(s.anchor) + " ";
  return out;
}

// Rewrites through `cache` as a session does; `hit` says whether the cache served it.
struct Lookup {
  std::shared_ptr<const CachedRewrite> rewrite;
  bool hit = false;
};

Lookup through(RewriteCache& cache, const Catalog& catalog, const SeedSet& seeds,
               const std::vector<std::string>& path, std::string_view sql) {
  auto probe = RewriteCache::probe(sql, 1, path);
  if (auto found = cache.find(probe, sql)) return {std::move(found), true};
  auto result = rewrite({sql, catalog, seeds, path});
  const auto constants = result.value_constants;
  auto entry = cached(std::move(result));
  cache.store(probe, sql, entry, constants);
  return {std::move(entry), false};
}

// The served rewrite is the rewriter's own for `sql`.
void check_same(const CachedRewrite& served, const Catalog& catalog, const SeedSet& seeds,
                const std::vector<std::string>& path, std::string_view sql) {
  const auto fresh = cached(rewrite({sql, catalog, seeds, path}));
  INFO("text: " << sql);
  REQUIRE(static_cast<int>(served.outcome) == static_cast<int>(fresh->outcome));
  CHECK(served.sql == fresh->sql);
  CHECK(splices_of(served) == splices_of(*fresh));
  CHECK(reads_of(served) == reads_of(*fresh));
  CHECK(served.error.position == fresh->error.position);
  CHECK(served.refusal_marker == fresh->refusal_marker);
}

struct Bank {
  Catalog catalog{{{"public", "account", {"id", "owner", "balance", "opened_on"}}}, 1};
  SeedSet seeds;
  std::vector<std::string> path{"public"};
  RewriteCache cache{4096, 16u << 20};
  Bank() {
    std::vector<std::string> errors;
    seeds = SeedSet::compile(
        {{"public", "account", "risk_score", "numeric", "balance / 1000.0", Phase::virtual_}},
        catalog, 1, errors);
    REQUIRE(errors.empty());
  }
  Lookup run(std::string_view sql) { return through(cache, catalog, seeds, path, sql); }
  // `first` fills the cache; `second` must be served from it, exactly as rewritten afresh.
  void shares(std::string_view first, std::string_view second) {
    INFO(first << "  /  " << second);
    CHECK_FALSE(run(first).hit);
    const auto served = run(second);
    CHECK(served.hit);
    check_same(*served.rewrite, catalog, seeds, path, second);
  }
  // `second` must not be served from `first`'s template (and is rewritten afresh).
  void apart(std::string_view first, std::string_view second) {
    INFO(first << "  /  " << second);
    (void)run(first);
    const auto served = run(second);
    CHECK_FALSE(served.hit);
    check_same(*served.rewrite, catalog, seeds, path, second);
  }
};

}  // namespace

TEST_CASE("the lexer names the constant each literal token spells") {
  const std::string sql =
      "SELECT 1, 2147483648, 1.5e3, .5, 'a''b', E'\\'', $q$x$q$, B'101', X'1F', U&'\\0061', $1, -7";
  const auto tokens = lex_sql(sql);
  std::vector<Literal> kinds;
  for (const auto& t : tokens)
    if (t.literal != Literal::none) kinds.push_back(t.literal);
  const std::vector<Literal> expected{
      Literal::integer,    Literal::numeric,        Literal::numeric, Literal::numeric,
      Literal::string,     Literal::string,         Literal::string,  Literal::bit_string,
      Literal::hex_string, Literal::unicode_string, Literal::integer};
  CHECK(kinds == expected);
  CHECK(kinds[10] == Literal::integer);  // -7: the sign is an operator of its own
}

TEST_CASE("each literal kind is spliced back byte for byte") {
  const std::string head = "SELECT risk_score, ";
  const std::string tail = " FROM account WHERE id = 17";
  const std::vector<std::pair<std::string, std::string>> pairs{
      {"'plain'", "'it''s a much longer ''quoted'' string'"},
      {"'a'", "$tag$dollar 'quoted' $$ text$tag$"},
      {"'a'", "E'escaped \\' and \\\\ here'"},
      {"E'x'", "'y'"},
      {"-5", "-123456789"},
      {"- 5", "- 77"},
      {"date '2020-01-01'", "date '1999-12-31 and more'"},
      {"'1'::int", "'123456'::int"},
      {"1.5", "123456.789e-10"},
      {"2147483648", "99999999999999999999"},
      {"B'101'", "B'1111000011110000'"},
      {"X'1F'", "X'DEADBEEF'"},
      {"U&'d\\0061t'", "U&'\\0441\\043B\\043E\\043D and more'"},
      {"'ünïcödé'", "'ascii'"},
      {"interval '1 day'", "interval '2 days 3 hours'"},
      {"'a'\n'b'", "'a'\n  'bb'"},
  };
  for (const auto& [first, second] : pairs) {
    Bank bank, other;
    bank.shares(head + first + tail, head + second + tail);
    // The key constant after the attribute changes too.
    other.shares(head + first + " FROM account WHERE id = 1",
                 head + second + " FROM account WHERE id = 123456789");
  }
  // Parameters are untouched: $1 and $2 are different texts.
  Bank bank;
  bank.apart("SELECT risk_score FROM account WHERE id = $1",
             "SELECT risk_score FROM account WHERE id = $2");
}

TEST_CASE("a constant before an edit moves the splice map with it") {
  Bank bank;
  bank.shares("SELECT 1, risk_score, 'x' FROM account WHERE id = 5",
              "SELECT 123456, risk_score, 'a much longer one' FROM account WHERE id = 5");
  bank.shares("SELECT * FROM account WHERE balance > -1 ORDER BY risk_score LIMIT 3",
              "SELECT * FROM account WHERE balance > -1000000 ORDER BY risk_score LIMIT 300000");
  // Error positions PostgreSQL reports after the constant map back to the client's text.
  const std::string client = "SELECT 'a much longer one', risk_score, nosuch FROM account";
  const auto served = bank.run("SELECT 'a', risk_score, nosuch FROM account");
  const auto hit = bank.run(client);
  REQUIRE(hit.hit);
  const auto& sent = hit.rewrite->sql;
  const auto at = static_cast<int>(sent.find("nosuch")) + 1;
  CHECK(client_position(hit.rewrite->splices, client, sent, at) ==
        static_cast<int>(client.find("nosuch")) + 1);
  (void)served;
}

TEST_CASE("constants whose value can change the rewrite are part of the key") {
  Bank bank;
  // Positional ORDER BY, GROUP BY and DISTINCT ON name output columns.
  bank.apart("SELECT id, risk_score FROM account ORDER BY 1",
             "SELECT id, risk_score FROM account ORDER BY 2");
  bank.apart("SELECT risk_score, count(*) FROM account GROUP BY 1",
             "SELECT risk_score, count(*) FROM account GROUP BY 2");
  bank.apart("SELECT DISTINCT ON (1) risk_score, id FROM account",
             "SELECT DISTINCT ON (2) risk_score, id FROM account");
  // ORDER BY 1 and ORDER BY 2 each keep their own template of the one shape.
  CHECK(bank.run("SELECT id, risk_score FROM account ORDER BY 1").hit);
  CHECK(bank.run("SELECT id, risk_score FROM account ORDER BY 2").hit);
  // An expression in ORDER BY is a value.
  bank.shares("SELECT risk_score FROM account ORDER BY risk_score + 1",
              "SELECT risk_score FROM account ORDER BY risk_score + 2");
  // Type modifiers.
  bank.apart("SELECT risk_score::varchar(10) FROM account",
             "SELECT risk_score::varchar(20) FROM account");
  bank.apart("SELECT risk_score::numeric(10,2) FROM account",
             "SELECT risk_score::numeric(10,3) FROM account");
  bank.apart("SELECT risk_score::float(10) FROM account",
             "SELECT risk_score::float(40) FROM account");
  // Statements the proxy reads itself, or the resolver reads constants of.
  bank.apart("PREPARE p AS SELECT risk_score FROM account WHERE id = 1",
             "PREPARE p AS SELECT risk_score FROM account WHERE id = 2");
  bank.apart("SET search_path = 'public'; SELECT risk_score FROM account",
             "SET search_path = 'other'; SELECT risk_score FROM account");
  bank.apart("EXPLAIN SELECT risk_score FROM account WHERE id = 1",
             "EXPLAIN SELECT risk_score FROM account WHERE id = 2");
  bank.apart("DECLARE c CURSOR FOR SELECT risk_score FROM account WHERE id = 1",
             "DECLARE c CURSOR FOR SELECT risk_score FROM account WHERE id = 2");
  // A refusal's marker and position come from its exact text.
  bank.apart("UPDATE account SET risk_score = 1 WHERE id = 1",
             "UPDATE account SET risk_score = 1 WHERE id = 2");
}

TEST_CASE("shapes that must not share do not collide") {
  Bank bank;
  // A string and a number in one place are different tokens to PostgreSQL's grammar.
  bank.apart("SELECT risk_score FROM account WHERE id = 1",
             "SELECT risk_score FROM account WHERE id = '1'");
  // An integer that does not fit in 32 bits is another token type.
  bank.apart("SELECT risk_score FROM account LIMIT 1",
             "SELECT risk_score FROM account LIMIT 10000000000");
  bank.apart("SELECT risk_score FROM account WHERE owner = B'1'",
             "SELECT risk_score FROM account WHERE owner = X'1'");
  // Text around the constants is compared byte for byte, comments and spaces included.
  bank.apart("SELECT risk_score FROM account WHERE id = 1",
             "SELECT risk_score FROM account WHERE id =  1");
  bank.apart("SELECT risk_score FROM account WHERE id = 1 -- 1",
             "SELECT risk_score FROM account WHERE id = 1 -- 2");
  // The sign is an operator: -5 and 5 are different texts.
  bank.apart("SELECT risk_score FROM account WHERE id = 5",
             "SELECT risk_score FROM account WHERE id = -5");
  // Another search_path or version is another key.
  CHECK_FALSE(bank.cache.find("SELECT risk_score FROM account WHERE id = 9", 2, bank.path));
  CHECK_FALSE(bank.cache.find("SELECT risk_score FROM account WHERE id = 9", 1,
                              std::vector<std::string>{"other"}));
  CHECK(bank.cache.find("SELECT risk_score FROM account WHERE id = 9", 1, bank.path));
}

TEST_CASE("reads are counted on every template hit") {
  Bank bank;
  (void)bank.run("SELECT risk_score FROM account WHERE id = 1; SELECT 1");
  const auto hit = bank.run("SELECT risk_score FROM account WHERE id = 2; SELECT 22");
  REQUIRE(hit.hit);
  CHECK(reads_of(*hit.rewrite) == "public.account.risk_score;");
}

TEST_CASE("the cache stays bounded under endless distinct shapes") {
  Bank bank;
  RewriteCache small(64, 64u << 10);
  for (int i = 0; i < 5000; ++i) {
    const std::string sql = "SELECT risk_score AS a" + std::to_string(i) +
                            " FROM account WHERE id = " + std::to_string(i);
    (void)through(small, bank.catalog, bank.seeds, bank.path, sql);
    CHECK(small.entries() <= 64);
    CHECK(small.bytes() <= (64u << 10));
  }
  // Endless variants of one shape (ORDER BY n) stay bounded per shape.
  RewriteCache one(64, 64u << 10);
  for (int i = 1; i < 200; ++i) {
    const std::string sql = "SELECT risk_score FROM account ORDER BY " + std::to_string(i);
    (void)through(one, bank.catalog, bank.seeds, bank.path, sql);
  }
  CHECK(one.entries() == 1);
  CHECK(one.bytes() < RewriteCache::max_templates_per_shape * 1024);
}

namespace {

// A constant of the same token type as `original` but another value and length.
std::string other_constant(std::string_view original, Literal kind) {
  switch (kind) {
    case Literal::integer:
      return original == "987654" ? "3" : "987654";
    case Literal::numeric:
      return original == "12345.678" ? "0.5" : "12345.678";
    case Literal::string:
      return original == "'it''s'" ? "''" : "'it''s'";
    case Literal::bit_string:
      return "B'10101010'";
    case Literal::hex_string:
      return "X'00FF00FF'";
    case Literal::unicode_string:
      return "U&'w\\0061ter'";
    case Literal::none:
      break;
  }
  return std::string(original);
}

}  // namespace

TEST_CASE("every corpus statement with its constants changed gets the rewriter's own rewrite") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(SEEDPROXY_SOURCE_DIR "/tests/rewriter/cases"))
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  int hits = 0, texts = 0;
  for (const auto& path : files) {
    const auto file = seedproxy::test::read_case_file(path.string());
    const Catalog catalog(file.relations, 1);
    std::vector<std::string> errors;
    const auto seeds = SeedSet::compile(file.seeds, catalog, 1, errors);
    for (const auto& c : file.cases) {
      const auto tokens = lex_sql(c.sql);
      // lex_constants is lex_sql's constant tokens, found without keyword lookups.
      std::vector<std::pair<int, int>> all, only;
      for (const auto& t : tokens)
        if (t.literal != Literal::none) all.emplace_back(t.start, t.end);
      for (const auto& t : lex_constants(c.sql)) only.emplace_back(t.start, t.end);
      CHECK(all == only);
      if (std::none_of(tokens.begin(), tokens.end(),
                       [](const Token& t) { return t.literal != Literal::none; }))
        continue;
      RewriteCache cache(64, 1u << 20);
      (void)through(cache, catalog, seeds, file.search_path, c.sql);
      // Every constant changed at once, then each on its own.
      std::vector<std::string> mutants;
      for (int only = -1; only < static_cast<int>(tokens.size()); ++only) {
        std::string text;
        std::size_t at = 0;
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          const auto& t = tokens[i];
          if (t.literal == Literal::none || (only >= 0 && static_cast<int>(i) != only)) continue;
          text.append(c.sql, at, static_cast<std::size_t>(t.start) - at);
          text += other_constant(
              std::string_view(c.sql).substr(static_cast<std::size_t>(t.start),
                                             static_cast<std::size_t>(t.end - t.start)),
              t.literal);
          at = static_cast<std::size_t>(t.end);
        }
        if (at == 0) continue;
        text.append(c.sql, at);
        mutants.push_back(std::move(text));
      }
      for (const auto& mutant : mutants) {
        ++texts;
        auto probe = RewriteCache::probe(mutant, 1, file.search_path);
        const auto served = cache.find(probe, mutant);
        if (!served) continue;
        ++hits;
        INFO(path.filename().string() << ":" << c.line << "\n" << c.sql);
        // A mutant PostgreSQL cannot parse is sent with its bad constant: its own error.
        if (parse_sql(mutant).failure) continue;
        check_same(*served, catalog, seeds, file.search_path, mutant);
      }
    }
  }
  MESSAGE("corpus mutants: " << texts << ", served from templates: " << hits);
  CHECK(hits > 100);
}

TEST_CASE("a text the cache was given is found by its bytes, and forgotten with its template") {
  Bank bank;
  const std::string first = "SELECT risk_score FROM account WHERE id = 1";
  const auto stored = bank.run(first);
  REQUIRE_FALSE(stored.hit);
  // The same text: the stored rewrite itself, not one spliced from the template.
  auto probe = RewriteCache::probe(first, 1, bank.path);
  CHECK(bank.cache.find(probe, first) == stored.rewrite);
  CHECK_FALSE(probe.shaped);  // found without lexing
  // Another constant: spliced from the template.
  const auto other = bank.run("SELECT risk_score FROM account WHERE id = 22");
  CHECK(other.hit);
  CHECK(other.rewrite != stored.rewrite);
  // Another search_path or version is another key.
  CHECK(bank.cache.find(first, 2, bank.path) == nullptr);
  CHECK(bank.cache.find(first, 1, std::vector<std::string>{"x"}) == nullptr);
  // ORDER BY n pins n: a ninth template drops the first, and its text is no longer found.
  Bank ordered;
  const auto text = [](int n) {
    return "SELECT risk_score FROM account ORDER BY " + std::to_string(n);
  };
  for (int n = 1; n <= static_cast<int>(RewriteCache::max_templates_per_shape); ++n)
    CHECK_FALSE(ordered.run(text(n)).hit);
  CHECK(ordered.run(text(1)).hit);
  CHECK_FALSE(ordered.run(text(99)).hit);  // drops the template stored first
  CHECK(ordered.cache.find(text(1), 1, ordered.path) == nullptr);
  CHECK(ordered.cache.find(text(2), 1, ordered.path) != nullptr);
  CHECK(ordered.cache.find(text(99), 1, ordered.path) != nullptr);
  // Evicting the whole shape forgets its texts too.
  RewriteCache tiny(1, 1u << 20);
  (void)through(tiny, bank.catalog, bank.seeds, bank.path, first);
  (void)through(tiny, bank.catalog, bank.seeds, bank.path, "SELECT risk_score FROM account");
  CHECK(tiny.entries() == 1);
  CHECK(tiny.find(first, 1, bank.path) == nullptr);
}
