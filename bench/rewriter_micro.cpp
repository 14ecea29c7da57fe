// Microbenchmark of the resolver's three statement paths: pre-filtered pass-through, cache hit,
// uncached rewrite. std::chrono and the thread CPU clock, no benchmark library: it builds wherever
// the proxy does.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"
#include "rewriter/parse/pg_parser.hpp"
#include "rewriter/splice/rewrite_cache.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "rewriter/statements/statement_clues.hpp"

namespace {

using namespace seedproxy::rewriter;
using Clock = std::chrono::steady_clock;

// The bank example of issue 3, plus tables the pass-through statement reads, plus filler standing
// in for pg_catalog and information_schema, which the real catalog loader also loads.
Catalog bank_catalog() {
  std::vector<Relation> relations{
      {"public", "account", {"id", "owner", "balance", "credit_limit", "opened_on"}},
      {"public", "txn", {"id", "account_id", "amount", "at"}},
      {"public", "customer", {"id", "name", "email", "created_on"}},
      {"public", "orders", {"id", "customer_id", "total", "placed_at", "status"}},
  };
  for (int i = 0; i < 200; ++i)
    relations.push_back({"pg_catalog", "pg_filler_" + std::to_string(i), {"oid", "name", "data"}});
  return Catalog(std::move(relations), 1);
}

SeedSet bank_seeds(const Catalog& catalog) {
  std::vector<SeedDefinition> definitions{{"public", "account", "risk_score", "numeric(8,2)",
                                           "balance / 1000.0 + credit_limit / 500.0",
                                           Phase::virtual_}};
  std::vector<std::string> errors;
  auto seeds = SeedSet::compile(definitions, catalog, 1, errors);
  if (!errors.empty()) {
    std::fprintf(stderr, "rewriter_micro: seed does not compile: %s\n", errors.front().c_str());
    std::exit(1);
  }
  return seeds;
}

// Typical application statements of about 200 bytes: a two-table join with parameters.
constexpr std::string_view passthrough_sql =
    "SELECT c.id, c.name, c.email, o.total, o.placed_at, o.status FROM public.customer c "
    "JOIN public.orders o ON o.customer_id = c.id WHERE c.created_on >= $1 AND o.total > $2 "
    "ORDER BY o.placed_at DESC LIMIT 20";
constexpr std::string_view virtual_sql =
    "SELECT a.id, a.owner, a.risk_score, t.amount, t.at FROM public.account a "
    "JOIN public.txn t ON t.account_id = a.id WHERE a.opened_on >= $1 AND t.amount > $2 "
    "ORDER BY t.at DESC LIMIT 20";
constexpr std::string_view short_sql = "SELECT risk_score FROM account WHERE id = 42817";

// Keeps the optimiser from dropping the measured work.
volatile std::size_t sink = 0;

struct Case {
  char id;
  const char* name;
  double target_ns;    // 0: informational, no target
  double cpu_ns = 0;   // median thread CPU time per operation: what PASS/MISS is judged on
  double wall_ns = 0;  // median wall-clock time per operation
  double cpu_min_ns = 0;
  double cpu_max_ns = 0;
  std::uint64_t iterations = 0;
};

// CPU time of this thread. On a shared machine the wall clock also counts the time other
// processes held the core; the thread's CPU clock counts only the work measured.
double thread_cpu_ns() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Times `op` in runs of a fixed iteration count (calibrated to about `run_seconds` each) and
// keeps the median, minimum and maximum ns/op over `runs` runs.
template <class Op>
void measure(Case& c, int runs, double run_seconds, Op&& op) {
  std::uint64_t n = 1;
  for (;;) {  // calibration, doubling as warm-up
    const double start = thread_cpu_ns();
    for (std::uint64_t i = 0; i < n; ++i) op();
    const double seconds = (thread_cpu_ns() - start) / 1e9;
    if (seconds >= run_seconds / 4) {
      n = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(n * run_seconds / seconds));
      break;
    }
    n *= 2;
  }
  std::vector<double> cpu;
  std::vector<double> wall;
  for (int r = 0; r < runs; ++r) {
    const auto wall_start = Clock::now();
    const double cpu_start = thread_cpu_ns();
    for (std::uint64_t i = 0; i < n; ++i) op();
    const double cpu_ns = thread_cpu_ns() - cpu_start;
    const double wall_ns =
        std::chrono::duration<double, std::nano>(Clock::now() - wall_start).count();
    cpu.push_back(cpu_ns / static_cast<double>(n));
    wall.push_back(wall_ns / static_cast<double>(n));
  }
  c.cpu_ns = median(cpu);
  c.wall_ns = median(wall);
  c.cpu_min_ns = *std::min_element(cpu.begin(), cpu.end());
  c.cpu_max_ns = *std::max_element(cpu.begin(), cpu.end());
  c.iterations = n;
}

std::string format_ns(double ns) {
  char text[32];
  if (ns < 1000)
    std::snprintf(text, sizeof text, "%.0f ns", ns);
  else
    std::snprintf(text, sizeof text, "%.2f µs", ns / 1000);
  return text;
}

void usage() {
  std::fprintf(stderr,
               "usage: rewriter_micro [--runs N] [--seconds S] [--only a|b|c] [--fail-on-miss]\n"
               "  --runs N        timed runs per case, median reported (default 7)\n"
               "  --seconds S     approximate length of one run (default 0.3)\n"
               "  --only X        run one case: a (pass-through), b (cache hit), c (rewrite),\n"
               "                  p (parse_sql alone), k (short PK read rewrite),\n"
               "                  w (pre-filter, long statement, many seeds),\n"
               "                  g (statement clues of a short SELECT), s (its search_path\n"
               "                  clue alone),\n"
               "                  t, u (template hits with new constants: shape cache)\n"
               "  --fail-on-miss  exit 1 when a median (CPU time) misses its target\n");
}

struct Options {
  int runs = 7;
  double run_seconds = 0.3;
  char only = 0;  // 0: every case
  bool fail_on_miss = false;
};

// The options, or the exit code when the command line asks for none of the work.
std::optional<Options> parse_options(int argc, char** argv, int& exit_code) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      options.runs = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--seconds" && i + 1 < argc) {
      options.run_seconds = std::max(0.01, std::atof(argv[++i]));
    } else if (arg == "--only" && i + 1 < argc && std::strlen(argv[i + 1]) == 1) {
      options.only = argv[++i][0];
    } else if (arg == "--fail-on-miss") {
      options.fail_on_miss = true;
    } else {
      usage();
      exit_code = arg == "-h" || arg == "--help" ? 0 : 2;
      return std::nullopt;
    }
  }
  return options;
}

// What the cases run against: the bank catalog and seed, the proxy's search_path and a warm
// per-thread cache of its sizes.
struct Bench {
  Catalog catalog = bank_catalog();
  SeedSet seeds = bank_seeds(catalog);
  // As StatementRewriting::effective_search_path() leaves it for user "postgres".
  std::vector<std::string> search_path{"postgres", "public"};
  RewriteRequest request{virtual_sql, catalog, seeds, search_path};
  RewriteCache cache{4096, 16u << 20};

  void store(std::string_view sql) {
    auto result = rewrite({sql, catalog, seeds, search_path});
    auto entry = std::make_shared<CachedRewrite>();
    entry->outcome = result.outcome;
    entry->sql = std::move(result.sql);
    entry->error = std::move(result.error);
    entry->refusal_marker = std::move(result.refusal_marker);
    entry->splices = std::move(result.splices);
    for (const auto& read : result.reads)
      entry->reads.push_back({read.attribute->schema, read.attribute->table, read.attribute->name});
    auto probe = RewriteCache::probe(sql, seeds.version(), search_path);
    cache.store(probe, sql, std::move(entry), result.value_constants);
  }
};

// Texts of `shape` (with one "%d" per constant) for keys 1..n: what pgbench -M simple sends.
std::vector<std::string> texts_of(const char* shape, int n) {
  std::vector<std::string> texts;
  for (int i = 1; i <= n; ++i) {
    char text[512];
    std::snprintf(text, sizeof text, shape, 1000 + i * 7919 % 100000, i % 97);
    texts.emplace_back(text);
  }
  return texts;
}

// Cases t and u: the lookup StatementRewriting does for a text of a shape it has seen, each time
// with other constants, so every hit splices: shape, find, template match, splice. Checked
// against the rewriter's own rewrite of every text first.
void measure_template_hit(Case& c, Bench& bench, const Options& options, const char* shape) {
  const auto texts = texts_of(shape, 1000);
  bench.store(texts.front());
  const auto& seeds = bench.seeds;
  for (const auto& text : texts) {
    const auto served = bench.cache.find(text, seeds.version(), bench.search_path);
    if (!served || served->sql != rewrite({text, bench.catalog, seeds, bench.search_path}).sql) {
      std::fprintf(stderr, "rewriter_micro: the template does not serve %s\n", text.c_str());
      std::exit(1);
    }
  }
  std::size_t next = 0;
  measure(c, options.runs, options.run_seconds, [&] {
    const std::string& text = texts[next];
    next = next + 1 == texts.size() ? 0 : next + 1;
    const std::vector<std::string> path = bench.search_path;
    if (!seeds.might_apply(text)) std::abort();
    auto probe = RewriteCache::probe(text, seeds.version(), path);
    const auto served = bench.cache.find(probe, text);
    if (!served) std::abort();
    sink = sink + served->sql.size();
  });
}

// Case w: the pre-filter looks for every filter word in turn, so its cost grows with statement
// length times seeds.
void measure_wide_prefilter(Case& c, const Options& options) {
  std::vector<Relation> relations;
  std::vector<SeedDefinition> definitions;
  for (int i = 0; i < 10; ++i) {
    const std::string n = std::to_string(i);
    relations.push_back({"public", "ledger_" + n, {"id", "amount"}});
    definitions.push_back(
        {"public", "ledger_" + n, "score_" + n, "numeric", "amount * 2", Phase::virtual_});
  }
  const Catalog wide_catalog(std::move(relations), 2);
  std::vector<std::string> errors;
  const SeedSet wide = SeedSet::compile(definitions, wide_catalog, 2, errors);
  std::string long_sql(passthrough_sql);
  while (long_sql.size() < 4000) long_sql.append(" UNION ALL ").append(passthrough_sql);
  if (!errors.empty() || wide.might_apply(long_sql)) std::abort();
  measure(c, options.runs, options.run_seconds, [&] { sink = sink + wide.might_apply(long_sql); });
}

void measure_case(Case& c, Bench& bench, const Options& options) {
  const int runs = options.runs;
  const double run_seconds = options.run_seconds;
  const auto& seeds = bench.seeds;
  switch (c.id) {
    case 'a':
      measure(c, runs, run_seconds, [&] { sink = sink + seeds.might_apply(passthrough_sql); });
      break;
    case 'b':
      for (int i = 0; i < 2000; ++i)
        bench.store("SELECT a.risk_score FROM public.account a WHERE a.id = " + std::to_string(i));
      bench.store(virtual_sql);
      measure(c, runs, run_seconds, [&] {
        // What StatementRewriting::lookup does for a statement it has seen before.
        const std::vector<std::string> path = bench.search_path;
        if (!seeds.might_apply(virtual_sql)) std::abort();
        const auto cached = bench.cache.find(virtual_sql, seeds.version(), path);
        if (!cached) std::abort();
        const std::optional<std::string> text = cached->sql;
        sink = sink + text->size();
      });
      break;
    case 'c':
      measure(c, runs, run_seconds, [&] { sink = sink + rewrite(bench.request).sql.size(); });
      break;
    case 'p':
      measure(c, runs, run_seconds, [&] { sink = sink + parse_sql(virtual_sql).tokens.size(); });
      break;
    case 'k':
      // pgbench -M simple sends every id as a literal, so every statement is a new cache key.
      measure(c, runs, run_seconds, [&] {
        sink = sink + rewrite({short_sql, bench.catalog, seeds, bench.search_path}).sql.size();
      });
      break;
    case 'w':
      measure_wide_prefilter(c, options);
      break;
    case 'g': {
      // What the session asks of every Query and Parse text before anything else.
      static constexpr std::string_view pgbench_sql =
          "SELECT abalance FROM pgbench_accounts WHERE aid = 51234;";
      measure(c, runs, run_seconds, [&] {
        const auto clues = statement_clues(pgbench_sql);
        sink = sink + clues.catalog_change + clues.search_path + clues.temporary;
      });
      break;
    }
    case 's': {
      // What a session with no seed and nothing followed asks instead
      // (StatementRewriting::clues_of).
      static constexpr std::string_view pgbench_sql =
          "SELECT abalance FROM pgbench_accounts WHERE aid = 51234;";
      measure(c, runs, run_seconds, [&] { sink = sink + search_path_clue(pgbench_sql); });
      break;
    }
    case 't':
      measure_template_hit(c, bench, options, "SELECT risk_score FROM account WHERE id = %d");
      break;
    case 'u':
      measure_template_hit(c, bench, options,
                           "SELECT a.id, a.owner, a.risk_score, t.amount, t.at FROM public.account "
                           "a JOIN public.txn t ON t.account_id = a.id WHERE a.opened_on >= "
                           "date '2020-01-01' + %d AND t.amount > -%d ORDER BY t.at DESC LIMIT 20");
      break;
  }
}

// The statements and a Markdown table of the cases measured; true when a target was missed.
bool report(const std::vector<Case>& cases, const Options& options, const std::string& rewritten) {
  std::printf("seedproxy rewriter microbenchmark: median of %d runs of ~%.2f s CPU each\n",
              options.runs, options.run_seconds);
  std::printf("pass-through statement (%zu bytes): %.*s\n", passthrough_sql.size(),
              static_cast<int>(passthrough_sql.size()), passthrough_sql.data());
  std::printf("virtual statement      (%zu bytes): %.*s\n", virtual_sql.size(),
              static_cast<int>(virtual_sql.size()), virtual_sql.data());
  std::printf("rewritten to           (%zu bytes): %s\n", rewritten.size(), rewritten.c_str());
  std::printf("short PK read          (%zu bytes): %.*s\n\n", short_sql.size(),
              static_cast<int>(short_sql.size()), short_sql.data());
  std::printf(
      "| case | CPU/op (median) | CPU min–max | wall/op (median) | iterations/run | target | "
      "result |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---|\n");
  bool missed = false;
  for (const auto& c : cases) {
    if (c.iterations == 0) continue;
    const bool pass = c.cpu_ns < c.target_ns;
    if (c.target_ns > 0) missed = missed || !pass;
    const std::string target = c.target_ns > 0 ? "< " + format_ns(c.target_ns) : "";
    std::printf("| %s | %s | %s–%s | %s | %llu | %s | %s |\n", c.name, format_ns(c.cpu_ns).c_str(),
                format_ns(c.cpu_min_ns).c_str(), format_ns(c.cpu_max_ns).c_str(),
                format_ns(c.wall_ns).c_str(), static_cast<unsigned long long>(c.iterations),
                target.c_str(), c.target_ns > 0 ? (pass ? "PASS" : "MISS") : "");
  }
  return missed;
}

}  // namespace

int main(int argc, char** argv) {
  int exit_code = 0;
  const auto options = parse_options(argc, argv, exit_code);
  if (!options) return exit_code;
  Bench bench;

  // Check that each case takes the path it claims to before timing it.
  if (bench.seeds.might_apply(passthrough_sql)) {
    std::fprintf(stderr, "rewriter_micro: the pass-through statement passes the pre-filter\n");
    return 1;
  }
  const RewriteResult reference = rewrite(bench.request);
  if (reference.outcome != RewriteResult::Outcome::rewritten) {
    std::fprintf(stderr, "rewriter_micro: the virtual statement was not rewritten\n");
    return 1;
  }

  std::vector<Case> cases{
      {'a', "a  pre-filtered pass-through (might_apply false)", 1000},
      {'b', "b  cache hit (path copy, might_apply, find, copy text)", 2000},
      {'c', "c  uncached rewrite (parse + resolve + splice)", 30000},
      {'p', "   of which parse_sql (libpg_query, JSON decode, tokens)", 0},
      {'k', "   uncached rewrite, short PK read with a literal", 0},
      {'w', "   pre-filter, 4 KB statement, 10 seeds on 10 tables", 0},
      {'g', "   statement clues of pgbench -S's SELECT (56 B)", 0},
      {'s', "   the search_path clue alone, same SELECT", 0},
      {'t', "t  template hit, short PK read with a new literal (shape cache)", 3000},
      {'u', "u  template hit, 200 B join with two new literals (shape cache)", 3000},
  };
  for (auto& c : cases)
    if (options->only == 0 || options->only == c.id) measure_case(c, bench, *options);
  const bool missed = report(cases, *options, reference.sql);
  return options->fail_on_miss && missed ? 1 : 0;
}
