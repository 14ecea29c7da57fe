// A session's temporary relations in the rewrite request: an unqualified name among them means the
// temporary relation (pg_temp first, unless search_path places it), which has no seed; the rewrite
// cache keeps rewrites made with and without them apart.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rewriter/splice/rewrite_cache.hpp"
#include "rewriter/splice/rewriter.hpp"

namespace {

using namespace seedproxy::rewriter;

struct Fixture {
  Catalog catalog{{{"public", "account", {"id", "balance"}}}, 1};
  SeedSet seeds;
  Fixture() {
    std::vector<std::string> errors;
    seeds = SeedSet::compile(
        {{"public", "account", "score", "numeric", "balance * 2", Phase::virtual_}}, catalog, 1,
        errors);
    REQUIRE(errors.empty());
  }
  RewriteResult rewrite_with(std::string_view sql, const std::vector<std::string>& path,
                             const std::vector<std::string>& temps) {
    return rewrite({sql, catalog, seeds, path, temps});
  }
};

}  // namespace

TEST_CASE("a temporary table named like a seeded table hides it, and has no seed") {
  Fixture f;
  const std::vector<std::string> path{"public"};
  const std::vector<std::string> temps{"account"};
  CHECK(f.rewrite_with("SELECT * FROM account", path, {}).outcome ==
        RewriteResult::Outcome::rewritten);
  CHECK(f.rewrite_with("SELECT * FROM account", path, temps).outcome ==
        RewriteResult::Outcome::unchanged);
  // A write of the name is the temporary table's own business.
  CHECK(f.rewrite_with("INSERT INTO account (id, score) VALUES (1, 2)", path, temps).outcome ==
        RewriteResult::Outcome::unchanged);
  // Qualified, the name is the seeded table.
  CHECK(f.rewrite_with("SELECT * FROM public.account", path, temps).outcome ==
        RewriteResult::Outcome::rewritten);
  // Another temporary name leaves the seeded table alone.
  CHECK(f.rewrite_with("SELECT * FROM account", path, {"other"}).outcome ==
        RewriteResult::Outcome::rewritten);
}

TEST_CASE("pg_temp named in search_path is searched in its place") {
  Fixture f;
  const std::vector<std::string> temps{"account"};
  CHECK(f.rewrite_with("SELECT * FROM account", {"public", "pg_temp"}, temps).outcome ==
        RewriteResult::Outcome::rewritten);
  CHECK(f.rewrite_with("SELECT * FROM account", {"pg_temp", "public"}, temps).outcome ==
        RewriteResult::Outcome::unchanged);
}

TEST_CASE("the cache keeps rewrites made with other temporary tables apart") {
  RewriteCache cache(16, 1u << 20);
  const std::vector<std::string> path{"public"};
  auto shown = std::make_shared<CachedRewrite>();
  shown->sql = "shown";
  cache.store("SELECT * FROM account", 7, path, shown);
  CHECK(cache.find("SELECT * FROM account", 7, path) == shown);
  CHECK(cache.find("SELECT * FROM account", 7, path, std::vector<std::string>{"account"}) ==
        nullptr);
  // A schema list and a temporary-table list never make the same key.
  cache.store("x", 7, std::vector<std::string>{"a", "b"}, shown);
  CHECK(cache.find("x", 7, std::vector<std::string>{"a"}, std::vector<std::string>{"b"}) ==
        nullptr);
}
