// Rewriter fuzzing on any text: deterministic, pre-filter exact, outputs parse, refusals coded.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "rewriter/parse/pg_parser.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "tests/fuzz/fuzz_check.hpp"

namespace {

using namespace seedproxy::rewriter;
using Outcome = RewriteResult::Outcome;

// The union of the data files' headers (tests/rewriter/cases/*.test): the bank example, quoted
// and keyword names, a second schema, and a seed in each phase, one of them cross-table.
struct Snapshot {
  Catalog catalog;
  SeedSet seeds;
  std::vector<std::string> search_path{"public"};
  std::vector<std::string> filter_words;  // what the pre-filter looks for, lower case

  Snapshot() {
    std::vector<Relation> relations{
        {"public", "account", {"id", "owner", "balance", "credit_limit", "opened_on", "tier"}},
        {"public", "txn", {"id", "account_id", "amount", "at", "kind"}},
        {"public", "audit", {"id", "account_id", "risk_score", "note"}},
        {"public", "branch", {"id", "name", "city", "label"}},
        {"public", "Client", {"Id", "Full Name", "Balance", "select"}},
        {"ledger", "account", {"id", "owner", "balance", "credit_limit", "opened_on"}},
    };
    catalog = Catalog(relations, 1);
    const std::vector<SeedDefinition> definitions{
        {"public", "account", "risk_score", "numeric(8,2)",
         "balance / 1000.0 + credit_limit / 500.0", Phase::virtual_},
        {"public", "account", "txn_count", "bigint",
         "(SELECT count(*) FROM public.txn t WHERE t.account_id = account.id)", Phase::virtual_},
        {"public", "account", "tier", "text",
         "CASE WHEN balance >= 10000 THEN 'gold' ELSE 'standard' END", Phase::materialized},
        {"public", "account", "old_score", "numeric", "balance / 2", Phase::rolled_back},
        {"public", "txn", "cents", "bigint", "(amount * 100)::bigint", Phase::materializing},
        {"public", "branch", "label", "text", "upper(name) || ' ' || city", Phase::materializing},
        {"public", "Client", "Score", "numeric(10,2)", "\"Balance\" * 2 + \"select\"",
         Phase::virtual_},
    };
    std::vector<std::string> errors;
    seeds = SeedSet::compile(definitions, catalog, 1, errors);
    if (!errors.empty()) {
      std::fprintf(stderr, "rewriter_fuzz: the fixed seed set does not compile: %s\n",
                   errors.front().c_str());
      std::abort();
    }
    for (const auto& definition : definitions) {
      if (definition.phase == Phase::rolled_back) continue;
      for (const auto* word : {&definition.attribute, &definition.table}) {
        std::string lower;
        for (char c : *word) lower += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : c;
        filter_words.push_back(lower);
      }
    }
  }
};

// The pre-filter's documented answer: a case-insensitive substring search for each word.
bool mentions_a_word(std::string_view sql, const std::vector<std::string>& words) {
  std::string lower(sql);
  for (char& c : lower)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return std::any_of(words.begin(), words.end(), [&](const std::string& word) {
    return lower.find(word) != std::string::npos;
  });
}

bool same(const RewriteResult& a, const RewriteResult& b) {
  if (a.outcome != b.outcome || a.sql != b.sql || a.refusal_marker != b.refusal_marker)
    return false;
  if (a.error.sqlstate != b.error.sqlstate || a.error.message != b.error.message ||
      a.error.detail != b.error.detail || a.error.position != b.error.position)
    return false;
  if (a.reads.size() != b.reads.size()) return false;
  for (std::size_t i = 0; i < a.reads.size(); ++i)
    if (a.reads[i].attribute != b.reads[i].attribute) return false;
  return true;
}

bool is_sqlstate(std::string_view code) {
  return code.size() == 5 && std::all_of(code.begin(), code.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
         });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Snapshot snapshot;
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  const RewriteRequest request{sql, snapshot.catalog, snapshot.seeds, snapshot.search_path};
  const RewriteResult result = rewrite(request);
  const std::string shown = seedproxy::fuzz::shown(sql);

  // A pure function of its inputs: the rewrite cache relies on it.
  FUZZ_CHECK(same(rewrite(request), result), "two rewrites of one text differ: " + shown);

  const bool mentions = mentions_a_word(sql, snapshot.filter_words);
  FUZZ_CHECK(snapshot.seeds.might_apply(sql) == mentions,
             "the pre-filter disagrees with a plain substring search: " + shown);
  if (!mentions) FUZZ_CHECK(result.outcome == Outcome::unchanged, "filtered out but changed");

  const auto* first_attribute = snapshot.seeds.attributes().data();
  const auto* end_attribute = first_attribute + snapshot.seeds.attributes().size();
  for (const auto& read : result.reads)
    FUZZ_CHECK(read.attribute >= first_attribute && read.attribute < end_attribute &&
                   read.attribute->live(),
               "a read of something that is not a live attribute of the snapshot");

  switch (result.outcome) {
    case Outcome::unchanged:
      // What reaches PostgreSQL is the client's text: nothing else may be carried.
      FUZZ_CHECK(result.sql.empty() || result.sql == sql,
                 "unchanged, yet with other text: " + seedproxy::fuzz::shown(result.sql));
      FUZZ_CHECK(result.error.sqlstate.empty() && result.refusal_marker.empty(),
                 "unchanged, yet with an error");
      break;
    case Outcome::rewritten: {
      FUZZ_CHECK(!result.sql.empty() && result.error.sqlstate.empty(), "rewritten to nothing");
      const ParsedSql again = parse_sql(result.sql);
      FUZZ_CHECK(!again.failure, "the rewritten text does not parse (" +
                                     (again.failure ? again.failure->message : "") + "): " + shown +
                                     "\n  became: " + seedproxy::fuzz::shown(result.sql, 600));
      break;
    }
    case Outcome::refused: {
      FUZZ_CHECK(is_sqlstate(result.error.sqlstate),
                 "refused with SQLSTATE \"" + seedproxy::fuzz::shown(result.error.sqlstate) + "\"");
      FUZZ_CHECK(!result.error.message.empty(), "refused without a message");
      FUZZ_CHECK(result.error.position >= 0 &&
                     static_cast<std::size_t>(result.error.position) <= sql.size() + 1,
                 "error position " + std::to_string(result.error.position) + " outside the text");
      FUZZ_CHECK(result.refusal_marker.starts_with(refusal_marker_prefix), "marker prefix");
      FUZZ_CHECK(result.sql.find(result.refusal_marker) != std::string::npos,
                 "the refused text does not name its marker");
      const ParsedSql again = parse_sql(result.sql);
      FUZZ_CHECK(!again.failure, "the refused text does not parse (" +
                                     (again.failure ? again.failure->message : "") + "): " + shown +
                                     "\n  became: " + seedproxy::fuzz::shown(result.sql, 600));
      break;
    }
  }
  return 0;
}
