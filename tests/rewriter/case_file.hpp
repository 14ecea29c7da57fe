// Reading rewriter data files: a header declaring catalog and seeds, then cases of
// `query` / SQL / `----` / expected SQL, `unchanged`, or `error SQLSTATE: message`.
//   catalog schema.table: col, col, col@N, col!, …   (attnums 1, 2, …; "@N" after a dropped
//   column; "!" a column carrying the mark of the seed materialization that added it)
//   seed schema.table.attr TYPE [after N] [phase P]: expression
// A seed's "after N" is the table's highest attnum when it was declared; seeds are declared in
// the file's order. Without it the seed sits where registries before version 3 put it.
#pragma once

#include <string>
#include <vector>

#include "rewriter/catalog/catalog.hpp"
#include "rewriter/catalog/seed_set.hpp"

namespace seedproxy::test {

struct RewriteCase {
  int line = 0;
  std::string sql;
  std::string expected;  // SQL text, "unchanged", or "error XXXXX: message[\ndetail: …]"
};

struct CaseFile {
  std::vector<rewriter::Relation> relations;
  std::vector<rewriter::SeedDefinition> seeds;
  std::vector<std::string> search_path{"public"};
  std::vector<RewriteCase> cases;
};

// Throws std::runtime_error naming the file and line of a malformed directive.
[[nodiscard]] CaseFile read_case_file(const std::string& path);

}  // namespace seedproxy::test
