// Prints what the rewriter does with every case of the data files given, one JSON object per
// line, for oracle.py to check against PostgreSQL.
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>

#include "rewriter/splice/rewriter.hpp"
#include "tests/rewriter/case_file.hpp"

int main(int argc, char** argv) {
  using seedproxy::rewriter::RewriteResult;
  try {
    for (int a = 1; a < argc; ++a) {
      const auto file = seedproxy::test::read_case_file(argv[a]);
      const seedproxy::rewriter::Catalog catalog(file.relations, 1);
      std::vector<std::string> errors;
      const auto seeds = seedproxy::rewriter::SeedSet::compile(file.seeds, catalog, 1, errors);
      for (const auto& error : errors) std::cerr << argv[a] << ": seed refused: " << error << "\n";
      for (const auto& c : file.cases) {
        const auto result = seedproxy::rewriter::rewrite({c.sql, catalog, seeds, file.search_path});
        nlohmann::json line{{"file", argv[a]},
                            {"line", c.line},
                            {"sql", c.sql},
                            {"expected", c.expected},
                            {"out", result.sql}};
        std::string described;
        if (result.outcome == RewriteResult::Outcome::refused) {
          const auto& e = result.error;
          line["outcome"] = "refused";
          line["sqlstate"] = e.sqlstate;
          line["message"] = e.message;
          line["detail"] = e.detail;
          line["position"] = e.position;
          described = "error " + e.sqlstate + ": " + e.message;
          if (!e.detail.empty()) described += "\ndetail: " + e.detail;
          if (e.position > 0) described += "\nposition: " + std::to_string(e.position);
        } else if (result.outcome == RewriteResult::Outcome::rewritten && result.sql != c.sql) {
          line["outcome"] = "rewritten";
          described = result.sql;
        } else {
          line["outcome"] = "unchanged";
          described = "unchanged";
        }
        line["described"] = described;
        std::cout << line.dump() << "\n";
      }
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
