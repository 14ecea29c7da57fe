// Runs every data file under tests/rewriter/cases through the rewriter.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "rewriter/splice/rewriter.hpp"
#include "tests/rewriter/case_file.hpp"

namespace {

std::string describe(const seedproxy::rewriter::RewriteResult& result, const std::string& sql) {
  using Outcome = seedproxy::rewriter::RewriteResult::Outcome;
  switch (result.outcome) {
    case Outcome::unchanged:
      return "unchanged";
    case Outcome::rewritten:
      return result.sql == sql ? "unchanged" : result.sql;
    case Outcome::refused: {
      std::string text = "error " + result.error.sqlstate + ": " + result.error.message;
      if (!result.error.detail.empty()) text += "\ndetail: " + result.error.detail;
      if (result.error.position > 0) text += "\nposition: " + std::to_string(result.error.position);
      return text;
    }
  }
  return "?";
}

}  // namespace

TEST_CASE("rewriter data files") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(SEEDPROXY_SOURCE_DIR "/tests/rewriter/cases"))
    if (entry.path().extension() == ".test") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  int total = 0;
  for (const auto& path : files) {
    const auto file = seedproxy::test::read_case_file(path.string());
    const seedproxy::rewriter::Catalog catalog(file.relations, 1);
    std::vector<std::string> errors;
    const auto seeds = seedproxy::rewriter::SeedSet::compile(file.seeds, catalog, 1, errors);
    INFO(path.filename().string());
    CHECK_MESSAGE(errors.empty(), (errors.empty() ? "" : errors.front()));
    for (const auto& c : file.cases) {
      ++total;
      const auto result = seedproxy::rewriter::rewrite({c.sql, catalog, seeds, file.search_path});
      INFO(path.filename().string() << ":" << c.line << "\n" << c.sql);
      CHECK(describe(result, c.sql) == c.expected);
    }
  }
  MESSAGE("rewriter cases run: " << total);
}
