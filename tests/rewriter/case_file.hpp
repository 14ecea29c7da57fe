// Reading rewriter data files: a header declaring catalog and seeds, then cases of
// `query` / SQL / `----` / expected SQL, `unchanged`, or `error SQLSTATE: message`.
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
