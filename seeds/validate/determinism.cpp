// Reading the analysed tree of a seed's check view: functions, operators, I/O casts, constants
// and SQL value functions, each judged by the volatility PostgreSQL records for it.
#include "seeds/validate/determinism.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <set>

#include "common/text.hpp"
#include "seeds/validate/query_tree.hpp"

namespace seedproxy::seeds {
namespace {

// PostgreSQL 15's SQLValueFunctionOp, in order.
constexpr std::array<std::string_view, 15> sql_value_functions{
    "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIME",   "CURRENT_TIMESTAMP", "CURRENT_TIMESTAMP",
    "LOCALTIME",    "LOCALTIME",    "LOCALTIMESTAMP", "LOCALTIMESTAMP",    "CURRENT_ROLE",
    "CURRENT_USER", "USER",         "SESSION_USER",   "CURRENT_CATALOG",   "CURRENT_SCHEMA"};

// Date/time input words that mean "when the query runs".
constexpr std::array<std::string_view, 4> moving_words{"now", "today", "tomorrow", "yesterday"};

[[nodiscard]] std::string_view volatility_name(std::string_view code) noexcept {
  if (code == "i") return "IMMUTABLE";
  if (code == "s") return "STABLE";
  return "VOLATILE";
}

[[nodiscard]] bool numeric(std::string_view text) noexcept {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A PostgreSQL array literal of oids, passed as one text parameter.
[[nodiscard]] std::string oid_array(const std::set<std::string>& oids) {
  return text_array_literal({oids.begin(), oids.end()});
}

}  // namespace

DeterminismVerdict judge_determinism(ControlConnection& connection, std::string_view tree,
                                     const std::string& view_oid, const std::string& entity_oid,
                                     std::size_t expression_at,
                                     const std::vector<StringLiteral>& literals) {
  DeterminismVerdict verdict;
  const auto nodes = read_query_tree(tree);
  struct Offender {
    int location = -1;
    std::string cause;
  };
  std::vector<Offender> offenders;
  std::map<std::string, int> functions;  // oid → first location
  std::map<std::string, int> operators;
  std::map<std::string, int> constants;             // type oid → first location of a literal
  std::vector<std::pair<std::string, int>> reads;   // I/O casts: (type read, location)
  std::vector<std::pair<std::string, int>> writes;  // I/O casts: (type written, location)
  std::set<std::string> all_types;
  bool unknown_write = false;
  auto note = [](std::map<std::string, int>& map, std::string_view oid, int location) {
    if (!numeric(oid) || oid == "0") return;
    auto [it, fresh] = map.try_emplace(std::string(oid), location);
    if (!fresh && location >= 0 && (it->second < 0 || location < it->second)) it->second = location;
  };
  for (const auto& node : nodes) {
    const int location = node.location();
    for (const auto& [field, text] : node.fields)
      if ((field.ends_with("type") || field.ends_with("typeid")) && numeric(text) && text != "0")
        all_types.insert(text);
    const std::string& kind = node.kind;
    if (kind == "FUNCEXPR") {
      note(functions, node.field("funcid"), location);
    } else if (kind == "AGGREF") {
      note(functions, node.field("aggfnoid"), location);
    } else if (kind == "WINDOWFUNC") {
      note(functions, node.field("winfnoid"), location);
    } else if (kind == "TABLESAMPLECLAUSE") {
      note(functions, node.field("tsmhandler"), location);
    } else if (kind == "OPEXPR" || kind == "DISTINCTEXPR" || kind == "NULLIFEXPR" ||
               kind == "SCALARARRAYOPEXPR") {
      note(operators, node.field("opno"), location);
    } else if (kind == "ROWCOMPAREEXPR") {
      for (const auto& oid : node.opnos) note(operators, oid, location);
    } else if (kind == "SORTGROUPCLAUSE") {
      note(operators, node.field("eqop"), -1);
      note(operators, node.field("sortop"), -1);
    } else if (kind == "SQLVALUEFUNCTION") {
      const int op = std::atoi(std::string(node.field("op")).c_str());
      const std::string_view name = op >= 0 && op < int(sql_value_functions.size())
                                        ? sql_value_functions[std::size_t(op)]
                                        : std::string_view("an SQL value function");
      offenders.push_back(
          {location, std::string(name) + " depends on when, where or by whom the query runs"});
    } else if (kind == "NEXTVALUEEXPR") {
      offenders.push_back({location, "it draws values from a sequence"});
    } else if (kind == "PARAM") {
      offenders.push_back({location, "a parameter placeholder has no fixed value"});
    } else if (kind == "VAR") {
      const std::string_view attnum = node.field("varattno");
      if (attnum.starts_with("-"))
        offenders.push_back(
            {location, "it reads a system column, which changes when a row is updated or moved"});
    } else if (kind == "CONST") {
      if (node.field("constisnull") == "false") note(constants, node.field("consttype"), location);
    } else if (kind == "COERCEVIAIO") {
      reads.emplace_back(std::string(node.field("resulttype")), location);
      if (node.argument_type.empty())
        unknown_write = true;
      else
        writes.emplace_back(node.argument_type, location);
    } else if (kind == "SUBLINK") {
      verdict.cross_table = true;
    } else if (kind == "QUERY") {
      if (node.field("hasForUpdate") == "true") verdict.locks_rows = true;
    } else if (kind == "RANGETBLENTRY") {
      const std::string_view relid = node.field("relid");
      if (node.field("rtekind") == "0" && relid != view_oid && relid != entity_oid)
        verdict.cross_table = true;
    }
  }

  auto keys_of = [](const std::map<std::string, int>& map) {
    std::set<std::string> keys;
    for (const auto& entry : map) keys.insert(entry.first);
    return keys;
  };
  if (!functions.empty()) {
    auto result = connection.query(
        "seed validation: function volatility",
        "SELECT p.oid::text, p.oid::regprocedure::text, p.provolatile::text "
        "FROM pg_catalog.pg_proc p WHERE p.oid = ANY($1::oid[]) AND p.provolatile <> 'i'",
        {oid_array(keys_of(functions))});
    for (int row = 0; row < PQntuples(result.get()); ++row)
      offenders.push_back({functions[text_at(result, row, 0)],
                           text_at(result, row, 1) + " is " +
                               std::string(volatility_name(text_at(result, row, 2)))});
  }
  if (!operators.empty()) {
    auto result =
        connection.query("seed validation: operator volatility",
                         "SELECT o.oid::text, o.oid::regoperator::text, p.oid::regprocedure::text, "
                         "p.provolatile::text FROM pg_catalog.pg_operator o "
                         "JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode "
                         "WHERE o.oid = ANY($1::oid[]) AND p.provolatile <> 'i'",
                         {oid_array(keys_of(operators))});
    for (int row = 0; row < PQntuples(result.get()); ++row)
      offenders.push_back({operators[text_at(result, row, 0)],
                           "operator " + text_at(result, row, 1) + " runs " +
                               text_at(result, row, 2) + ", which is " +
                               std::string(volatility_name(text_at(result, row, 3)))});
  }
  std::set<std::string> types;
  for (const auto& [oid, location] : constants) types.insert(oid);
  for (const auto& [oid, location] : reads) types.insert(oid);
  for (const auto& [oid, location] : writes) types.insert(oid);
  if (unknown_write) types.insert(all_types.begin(), all_types.end());
  std::erase_if(types, [](const std::string& oid) { return !numeric(oid) || oid == "0"; });
  if (!types.empty()) {
    struct TypeIo {
      std::string name, input, input_volatility, output, output_volatility;
    };
    std::map<std::string, TypeIo> io;
    auto result = connection.query(
        "seed validation: type input and output",
        "SELECT t.oid::text, pg_catalog.format_type(t.oid, NULL), i.oid::regprocedure::text, "
        "i.provolatile::text, o.oid::regprocedure::text, o.provolatile::text "
        "FROM pg_catalog.pg_type t JOIN pg_catalog.pg_proc i ON i.oid = t.typinput "
        "JOIN pg_catalog.pg_proc o ON o.oid = t.typoutput WHERE t.oid = ANY($1::oid[])",
        {oid_array(types)});
    for (int row = 0; row < PQntuples(result.get()); ++row)
      io[text_at(result, row, 0)] = {text_at(result, row, 1), text_at(result, row, 2),
                                     text_at(result, row, 3), text_at(result, row, 4),
                                     text_at(result, row, 5)};
    for (const auto& [oid, location] : reads) {
      const auto it = io.find(oid);
      if (it != io.end() && it->second.input_volatility != "i")
        offenders.push_back(
            {location, "the cast to " + it->second.name + " reads text with " + it->second.input +
                           ", which is " +
                           std::string(volatility_name(it->second.input_volatility))});
    }
    for (const auto& [oid, location] : writes) {
      const auto it = io.find(oid);
      if (it != io.end() && it->second.output_volatility != "i")
        offenders.push_back(
            {location, "the cast of " + it->second.name + " to text writes it with " +
                           it->second.output + ", which is " +
                           std::string(volatility_name(it->second.output_volatility))});
    }
    if (unknown_write && !reads.empty())
      for (const auto& [oid, entry] : io)
        if (entry.output_volatility != "i")
          offenders.push_back(
              {reads.front().second, "a cast through text may write a " + entry.name + " with " +
                                         entry.output + ", which is " +
                                         std::string(volatility_name(entry.output_volatility))});
    // A date/time literal such as 'now' or 'today' is read again whenever the query runs.
    for (const auto& [oid, location] : constants) {
      const auto it = io.find(oid);
      if (it == io.end() || it->second.input_volatility == "i" || location < 0) continue;
      const std::size_t at = static_cast<std::size_t>(location) >= expression_at
                                 ? static_cast<std::size_t>(location) - expression_at
                                 : 0;
      const auto literal = std::find_if(literals.begin(), literals.end(),
                                        [&](const StringLiteral& l) { return l.begin >= at; });
      if (literal == literals.end()) continue;
      const std::string text = text::ascii_lower(literal->value);
      for (const auto word : moving_words)
        if (text.find(word) != std::string::npos) {
          offenders.push_back({location, "the " + it->second.name + " literal '" + literal->value +
                                             "' means a different value whenever the query runs"});
          break;
        }
    }
  }
  if (offenders.empty()) return verdict;
  // Report the first one in the expression (those without a location last).
  const auto first = std::min_element(offenders.begin(), offenders.end(),
                                      [](const Offender& a, const Offender& b) {
                                        if ((a.location < 0) != (b.location < 0))
                                          return b.location < 0;
                                        return a.location < b.location;
                                      });
  verdict.location = first->location;
  verdict.cause = first->cause;
  return verdict;
}

}  // namespace seedproxy::seeds
