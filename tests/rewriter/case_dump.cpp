// Prints what the rewriter does with every case of the data files given, one JSON object per
// line, for oracle.py to check against PostgreSQL. With --map it instead reads JSON lines
// {"client", "rewritten", "splices", "position"} on stdin and prints the position client_position
// gives back in the client's text (null for none), so oracle.py can check error positions.
#include <exception>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "rewriter/splice/rewriter.hpp"
#include "rewriter/splice/splice_map.hpp"
#include "tests/rewriter/case_file.hpp"

namespace {

using seedproxy::rewriter::RewriteResult;
using seedproxy::rewriter::Splice;
using seedproxy::rewriter::SpliceMap;

nlohmann::json splices_json(const SpliceMap& map) {
  auto out = nlohmann::json::array();
  for (const auto& s : map)
    out.push_back({s.client_begin, s.client_end, s.length,
                   s.anchor == Splice::no_anchor ? -1 : static_cast<long long>(s.anchor)});
  return out;
}

SpliceMap splices_from(const nlohmann::json& list) {
  SpliceMap map;
  for (const auto& s : list) {
    const long long anchor = s[3].get<long long>();
    map.push_back({s[0].get<std::uint32_t>(), s[1].get<std::uint32_t>(), s[2].get<std::uint32_t>(),
                   anchor < 0 ? Splice::no_anchor : static_cast<std::uint32_t>(anchor)});
  }
  return map;
}

int map_positions() {
  std::string line;
  while (std::getline(std::cin, line)) {
    const auto in = nlohmann::json::parse(line);
    const auto position = seedproxy::rewriter::client_position(
        splices_from(in["splices"]), in["client"].get<std::string>(),
        in["rewritten"].get<std::string>(), in["position"].get<int>());
    std::cout << (position ? nlohmann::json(*position) : nlohmann::json()).dump() << "\n";
  }
  return 0;
}

nlohmann::json describe(const seedproxy::test::RewriteCase& c, const char* file,
                        const RewriteResult& result) {
  nlohmann::json line{{"file", file},      {"line", c.line},
                      {"sql", c.sql},      {"expected", c.expected},
                      {"out", result.sql}, {"splices", splices_json(result.splices)}};
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
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 2 && std::string(argv[1]) == "--map") return map_positions();
    for (int a = 1; a < argc; ++a) {
      const auto file = seedproxy::test::read_case_file(argv[a]);
      const seedproxy::rewriter::Catalog catalog(file.relations, 1);
      std::vector<std::string> errors;
      const auto seeds = seedproxy::rewriter::SeedSet::compile(file.seeds, catalog, 1, errors);
      for (const auto& error : errors) std::cerr << argv[a] << ": seed refused: " << error << "\n";
      for (const auto& c : file.cases) {
        const auto result = seedproxy::rewriter::rewrite({c.sql, catalog, seeds, file.search_path});
        std::cout << describe(c, argv[a], result).dump() << "\n";
      }
    }
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
  return 0;
}
