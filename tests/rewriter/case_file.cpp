// Parser for the rewriter's data-file test format.
#include "tests/rewriter/case_file.hpp"

#include <fstream>
#include <stdexcept>

namespace seedproxy::test {
namespace {

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = text.find(',', at);
    const auto piece =
        trim(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (!piece.empty()) out.push_back(piece);
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

std::pair<std::string, std::string> split_qualified(const std::string& name) {
  const auto dot = name.find('.');
  return {name.substr(0, dot), name.substr(dot + 1)};
}

// seed schema.table.attribute TYPE [after N] [phase PHASE]: expression; the `order`-th seed.
template <class Fail>
rewriter::SeedDefinition read_seed(const std::string& text, std::size_t order, Fail&& fail) {
  const auto colon = text.find(": ");
  if (colon == std::string::npos) fail("expected 'seed schema.table.attr type: expression'");
  std::string head = trim(text.substr(5, colon - 5));
  rewriter::SeedDefinition seed;
  if (const auto phase = head.find(" phase "); phase != std::string::npos) {
    const auto name = trim(head.substr(phase + 7));
    head = trim(head.substr(0, phase));
    if (name == "materializing")
      seed.phase = rewriter::Phase::materializing;
    else if (name == "materialized")
      seed.phase = rewriter::Phase::materialized;
    else if (name == "rolled_back")
      seed.phase = rewriter::Phase::rolled_back;
    else if (name != "virtual")
      fail("unknown phase " + name);
  }
  // "after N": declared when the table's highest attnum was N; the file's order is the
  // declaration order.
  if (const auto after = head.rfind(" after "); after != std::string::npos) {
    seed.place.after_attnum = std::stoi(head.substr(after + 7));
    head = trim(head.substr(0, after));
  }
  seed.place.order = static_cast<std::int64_t>(order);
  const auto space = head.find(' ');
  if (space == std::string::npos) fail("seed needs a type");
  const auto qualified = head.substr(0, space);
  const auto first = qualified.find('.');
  const auto second = qualified.find('.', first + 1);
  if (second == std::string::npos) fail("seed name must be schema.table.attribute");
  seed.schema = qualified.substr(0, first);
  seed.table = qualified.substr(first + 1, second - first - 1);
  seed.attribute = qualified.substr(second + 1);
  seed.type = trim(head.substr(space + 1));
  seed.expression = trim(text.substr(colon + 2));
  return seed;
}

}  // namespace

CaseFile read_case_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  CaseFile file;
  std::string line;
  int number = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(path + ":" + std::to_string(number) + ": " + why);
  };
  enum class State { header, query, expected } state = State::header;
  RewriteCase current;
  auto finish_case = [&] {
    while (!current.expected.empty() && current.expected.back() == '\n')
      current.expected.pop_back();
    while (!current.sql.empty() && current.sql.back() == '\n') current.sql.pop_back();
    file.cases.push_back(current);
    current = RewriteCase{};
  };
  while (std::getline(in, line)) {
    ++number;
    if (state == State::query) {
      if (line == "----") {
        state = State::expected;
      } else {
        current.sql += line + "\n";
      }
      continue;
    }
    if (state == State::expected) {
      if (trim(line).empty()) {
        finish_case();
        state = State::header;
      } else {
        current.expected += line + "\n";
      }
      continue;
    }
    const auto text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    if (text == "query") {
      state = State::query;
      current.line = number;
    } else if (text.rfind("catalog ", 0) == 0) {
      const auto colon = text.find(':');
      if (colon == std::string::npos) fail("expected 'catalog schema.table: col, col'");
      // "name@N" gives a column attnum N (dropped columns leave gaps); the next ones follow it.
      const auto [schema, table] = split_qualified(trim(text.substr(8, colon - 8)));
      rewriter::Relation relation{schema, table, {}};
      int attnum = 0;
      for (auto column : split_list(text.substr(colon + 1))) {
        ++attnum;
        const bool marked = column.back() == '!';  // added by a seed's materialization
        if (marked) column.pop_back();
        if (const auto at = column.find('@'); at != std::string::npos) {
          attnum = std::stoi(column.substr(at + 1));
          column = trim(column.substr(0, at));
        }
        relation.columns.push_back(column);
        relation.attnums.push_back(attnum);
        relation.marked.push_back(marked);
      }
      file.relations.push_back(std::move(relation));
    } else if (text.rfind("seed ", 0) == 0) {
      file.seeds.push_back(read_seed(text, file.seeds.size() + 1, fail));
    } else if (text.rfind("search_path:", 0) == 0) {
      file.search_path = split_list(text.substr(12));
    } else {
      fail("unknown directive: " + text);
    }
  }
  if (state == State::query) fail("query without '----'");
  if (state == State::expected) finish_case();
  return file;
}

}  // namespace seedproxy::test
