// client_position: positions PostgreSQL reports in a rewritten text, given back in the client's
// text through the splice map; by hand-made maps, and through rewrite() itself.
#include "rewriter/splice/splice_map.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rewriter/splice/rewriter.hpp"

using namespace seedproxy::rewriter;

namespace {

// 1-based character position of the first `needle` in `text` (UTF-8).
int position_of(const std::string& text, const std::string& needle) {
  const auto at = text.find(needle);
  REQUIRE(at != std::string::npos);
  int characters = 0;
  for (std::size_t i = 0; i < at; ++i)
    characters += (static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 ? 1 : 0;
  return characters + 1;
}

}  // namespace

TEST_CASE("no edits: every position is the client's own") {
  const std::string sql = "SELECT nosuchcol FROM t";
  CHECK(client_position({}, sql, sql, 8) == 8);
  CHECK(client_position({}, sql, sql, 1) == 1);
  CHECK(client_position({}, sql, sql, 24) == 24);  // just past the end: "at end of input"
  CHECK(!client_position({}, sql, sql, 0).has_value());
  CHECK(!client_position({}, sql, sql, -3).has_value());
}

TEST_CASE("before, inside and after a replacement") {
  //                   0         1         2
  //                   0123456789012345678901234567
  const std::string client = "SELECT s, x FROM t WHERE y = 1";
  const std::string rewritten = "SELECT ((t.a + t.b))::int AS \"s\", x FROM t WHERE y = 1";
  const SpliceMap map{{7, 8, 25, 7}};  // "s" became 25 bytes
  CHECK(client_position(map, client, rewritten, 1) == 1);
  CHECK(client_position(map, client, rewritten, 7) == 7);  // the space before the edit
  // Inside the replacement: the reference it replaced.
  CHECK(client_position(map, client, rewritten, 8) == 8);
  CHECK(client_position(map, client, rewritten, 20) == 8);
  CHECK(client_position(map, client, rewritten, 32) == 8);
  // After it: shifted back by the 24 bytes it added.
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "x FROM")) ==
        position_of(client, "x FROM"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "y = 1")) ==
        position_of(client, "y = 1"));
  // Past the end of the rewritten text: past the end of the client's.
  CHECK(client_position(map, client, rewritten, static_cast<int>(rewritten.size()) + 1) ==
        static_cast<int>(client.size()) + 1);
}

TEST_CASE("insertions, removals and several edits in a row") {
  const std::string client = "SELECT a.*, z FROM t a WHERE q AND r";
  // After "a.*" (ends at byte 10) ", e AS \"s\"" is inserted; "AND r" (bytes 31..36) is removed.
  const std::string rewritten = "SELECT a.*, e AS \"s\", z FROM t a WHERE q ";
  const SpliceMap map{{10, 10, 10, 7}, {31, 36, 0, 31}};
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "a.*")) ==
        position_of(client, "a.*"));
  // Inside the insertion: the 'a.*' it belongs to, not the insertion point.
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "e AS")) ==
        position_of(client, "a.*"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "z FROM")) ==
        position_of(client, "z FROM"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "q ")) ==
        position_of(client, "q AND"));
}

TEST_CASE("generated text without an anchor has no position") {
  const std::string client = "VALUES (1) UNION ALL TABLE t";
  const std::string rewritten = "VALUES (1) UNION ALL SELECT *, 1 AS \"s\" FROM t";
  const SpliceMap map{{21, 26, 23, Splice::no_anchor}};
  CHECK(!client_position(map, client, rewritten, position_of(rewritten, "*")).has_value());
  CHECK(!client_position(map, client, rewritten, position_of(rewritten, "1 AS")).has_value());
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "(1)")) ==
        position_of(client, "(1)"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, " t")) ==
        position_of(client, " t"));
}

TEST_CASE("characters, not bytes, on both sides") {
  // Two-byte and four-byte characters before the edit, in the replacement, and after it.
  const std::string client = "SELECT 'é', s, '😀' FROM t WHERE ü = 1";
  const std::string rewritten = "SELECT 'é', (t.a || 'ñ😀'), '😀' FROM t WHERE ü = 1";
  const auto begin = static_cast<std::uint32_t>(client.find(", s,") + 2);
  const std::uint32_t replacement = static_cast<std::uint32_t>(std::string("(t.a || 'ñ😀')").size());
  const SpliceMap map{{begin, begin + 1, replacement, begin}};
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "'é'")) == 8);
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "(t.a")) ==
        position_of(client, "s, '"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "😀'),")) ==
        position_of(client, "s, '"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "ü = 1")) ==
        position_of(client, "ü = 1"));
  CHECK(client_position(map, client, rewritten, position_of(rewritten, "'😀' FROM")) ==
        position_of(client, "'😀' FROM"));
}

namespace {

struct Seeded {
  Catalog catalog{std::vector<Relation>{{"public", "account", {"id", "balance"}}}, 1};
  SeedSet seeds;
  std::vector<std::string> path{"public"};
  Seeded() {
    std::vector<std::string> errors;
    seeds = SeedSet::compile(
        {{"public", "account", "score", "numeric", "balance * 2", Phase::virtual_}}, catalog, 1,
        errors);
    REQUIRE(errors.empty());
  }
  RewriteResult rewrite(const std::string& sql) const {
    return seedproxy::rewriter::rewrite({sql, catalog, seeds, path});
  }
};

}  // namespace

TEST_CASE("through rewrite(): a position after the splices is the client's") {
  const Seeded s;
  const std::string sql = "SELECT * FROM account WHERE nosuchcol = 1";
  const auto result = s.rewrite(sql);
  REQUIRE(result.outcome == RewriteResult::Outcome::rewritten);
  REQUIRE(!result.splices.empty());
  CHECK(client_position(result.splices, sql, result.sql, position_of(result.sql, "nosuchcol")) ==
        position_of(sql, "nosuchcol"));
  // An error inside the spelled-out seed points at the '*'.
  CHECK(client_position(result.splices, sql, result.sql, position_of(result.sql, "balance")) ==
        position_of(sql, "*"));
}

TEST_CASE("through rewrite(): a reference replaced by its expression, and TABLE spelled out") {
  const Seeded s;
  const std::string sql = "SELECT score, nosuchcol FROM account";
  const auto result = s.rewrite(sql);
  REQUIRE(result.outcome == RewriteResult::Outcome::rewritten);
  CHECK(client_position(result.splices, sql, result.sql, position_of(result.sql, "balance")) ==
        position_of(sql, "score"));
  CHECK(client_position(result.splices, sql, result.sql, position_of(result.sql, "nosuchcol")) ==
        position_of(sql, "nosuchcol"));

  const std::string table = "VALUES (1) UNION ALL TABLE account";
  const auto spelled = s.rewrite(table);
  REQUIRE(spelled.outcome == RewriteResult::Outcome::rewritten);
  CHECK(!client_position(spelled.splices, table, spelled.sql, position_of(spelled.sql, "*"))
             .has_value());
  CHECK(client_position(spelled.splices, table, spelled.sql, position_of(spelled.sql, "(1)")) ==
        position_of(table, "(1)"));
}
