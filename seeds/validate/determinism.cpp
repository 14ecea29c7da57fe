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

struct Offender {
  int location = -1;  // -1 when unknown
  std::string cause;
};

struct TypeIo {
  std::string name, input, input_volatility, output, output_volatility;
};

// One judgement: what the tree uses, each with its first location in the view's statement, and
// every reason found so far why the expression is not deterministic.
class Judgement {
 public:
  Judgement(ControlConnection& connection, const std::string& view_oid,
            const std::string& entity_oid)
      : connection_(connection), view_oid_(view_oid), entity_oid_(entity_oid) {}

  void read(const TreeNode& node);
  void judge_functions();
  void judge_operators();
  // Input and output functions of the types that casts through text and literals run.
  void judge_type_io(std::size_t expression_at, const std::vector<StringLiteral>& literals);
  [[nodiscard]] DeterminismVerdict verdict() const;

 private:
  static void note(std::map<std::string, int>& map, std::string_view oid, int location);
  [[nodiscard]] std::set<std::string> io_types() const;
  [[nodiscard]] std::map<std::string, TypeIo> load_type_io(const std::set<std::string>& types);
  void judge_casts(const std::map<std::string, TypeIo>& io);
  // A date/time literal such as 'now' or 'today' is read again whenever the query runs.
  void judge_moving_literals(const std::map<std::string, TypeIo>& io, std::size_t expression_at,
                             const std::vector<StringLiteral>& literals);

  ControlConnection& connection_;
  const std::string& view_oid_;
  const std::string& entity_oid_;
  std::vector<Offender> offenders_;
  std::map<std::string, int> functions_;  // oid → first location
  std::map<std::string, int> operators_;
  std::map<std::string, int> constants_;             // type oid → first location of a literal
  std::vector<std::pair<std::string, int>> reads_;   // I/O casts: (type read, location)
  std::vector<std::pair<std::string, int>> writes_;  // I/O casts: (type written, location)
  std::set<std::string> all_types_;
  bool unknown_write_ = false;  // a cast through text whose argument type this reader cannot tell
  bool cross_table_ = false;
  bool locks_rows_ = false;
};

void Judgement::note(std::map<std::string, int>& map, std::string_view oid, int location) {
  if (!numeric(oid) || oid == "0") return;
  auto [it, fresh] = map.try_emplace(std::string(oid), location);
  if (!fresh && location >= 0 && (it->second < 0 || location < it->second)) it->second = location;
}

void Judgement::read(const TreeNode& node) {
  const int location = node.location();
  for (const auto& [field, text] : node.fields)
    if ((field.ends_with("type") || field.ends_with("typeid")) && numeric(text) && text != "0")
      all_types_.insert(text);
  const std::string& kind = node.kind;
  if (kind == "FUNCEXPR") {
    note(functions_, node.field("funcid"), location);
  } else if (kind == "AGGREF") {
    note(functions_, node.field("aggfnoid"), location);
  } else if (kind == "WINDOWFUNC") {
    note(functions_, node.field("winfnoid"), location);
  } else if (kind == "TABLESAMPLECLAUSE") {
    note(functions_, node.field("tsmhandler"), location);
  } else if (kind == "OPEXPR" || kind == "DISTINCTEXPR" || kind == "NULLIFEXPR" ||
             kind == "SCALARARRAYOPEXPR") {
    note(operators_, node.field("opno"), location);
  } else if (kind == "ROWCOMPAREEXPR") {
    for (const auto& oid : node.opnos) note(operators_, oid, location);
  } else if (kind == "SORTGROUPCLAUSE") {
    note(operators_, node.field("eqop"), -1);
    note(operators_, node.field("sortop"), -1);
  } else if (kind == "SQLVALUEFUNCTION") {
    const int op = std::atoi(std::string(node.field("op")).c_str());
    const std::string_view name = op >= 0 && op < int(sql_value_functions.size())
                                      ? sql_value_functions[std::size_t(op)]
                                      : std::string_view("an SQL value function");
    offenders_.push_back(
        {location, std::string(name) + " depends on when, where or by whom the query runs"});
  } else if (kind == "NEXTVALUEEXPR") {
    offenders_.push_back({location, "it draws values from a sequence"});
  } else if (kind == "PARAM") {
    offenders_.push_back({location, "a parameter placeholder has no fixed value"});
  } else if (kind == "VAR") {
    if (node.field("varattno").starts_with("-"))
      offenders_.push_back(
          {location, "it reads a system column, which changes when a row is updated or moved"});
  } else if (kind == "CONST") {
    if (node.field("constisnull") == "false") note(constants_, node.field("consttype"), location);
  } else if (kind == "COERCEVIAIO") {
    reads_.emplace_back(std::string(node.field("resulttype")), location);
    if (node.argument_type.empty())
      unknown_write_ = true;
    else
      writes_.emplace_back(node.argument_type, location);
  } else if (kind == "SUBLINK") {
    cross_table_ = true;
  } else if (kind == "QUERY") {
    if (node.field("hasForUpdate") == "true") locks_rows_ = true;
  } else if (kind == "RANGETBLENTRY") {
    const std::string_view relid = node.field("relid");
    if (node.field("rtekind") == "0" && relid != view_oid_ && relid != entity_oid_)
      cross_table_ = true;
  }
}

void Judgement::judge_functions() {
  if (functions_.empty()) return;
  std::set<std::string> oids;
  for (const auto& entry : functions_) oids.insert(entry.first);
  auto result = connection_.query(
      "seed validation: function volatility",
      "SELECT p.oid::text, p.oid::regprocedure::text, p.provolatile::text "
      "FROM pg_catalog.pg_proc p WHERE p.oid = ANY($1::oid[]) AND p.provolatile <> 'i'",
      {oid_array(oids)});
  for (int row = 0; row < PQntuples(result.get()); ++row)
    offenders_.push_back(
        {functions_[text_at(result, row, 0)],
         text_at(result, row, 1) + " is " + std::string(volatility_name(text_at(result, row, 2)))});
}

void Judgement::judge_operators() {
  if (operators_.empty()) return;
  std::set<std::string> oids;
  for (const auto& entry : operators_) oids.insert(entry.first);
  auto result =
      connection_.query("seed validation: operator volatility",
                        "SELECT o.oid::text, o.oid::regoperator::text, p.oid::regprocedure::text, "
                        "p.provolatile::text FROM pg_catalog.pg_operator o "
                        "JOIN pg_catalog.pg_proc p ON p.oid = o.oprcode "
                        "WHERE o.oid = ANY($1::oid[]) AND p.provolatile <> 'i'",
                        {oid_array(oids)});
  for (int row = 0; row < PQntuples(result.get()); ++row)
    offenders_.push_back({operators_[text_at(result, row, 0)],
                          "operator " + text_at(result, row, 1) + " runs " +
                              text_at(result, row, 2) + ", which is " +
                              std::string(volatility_name(text_at(result, row, 3)))});
}

std::set<std::string> Judgement::io_types() const {
  std::set<std::string> types;
  for (const auto& [oid, location] : constants_) types.insert(oid);
  for (const auto& [oid, location] : reads_) types.insert(oid);
  for (const auto& [oid, location] : writes_) types.insert(oid);
  if (unknown_write_) types.insert(all_types_.begin(), all_types_.end());
  std::erase_if(types, [](const std::string& oid) { return !numeric(oid) || oid == "0"; });
  return types;
}

std::map<std::string, TypeIo> Judgement::load_type_io(const std::set<std::string>& types) {
  std::map<std::string, TypeIo> io;
  auto result = connection_.query(
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
  return io;
}

void Judgement::judge_casts(const std::map<std::string, TypeIo>& io) {
  for (const auto& [oid, location] : reads_) {
    const auto it = io.find(oid);
    if (it != io.end() && it->second.input_volatility != "i")
      offenders_.push_back(
          {location, "the cast to " + it->second.name + " reads text with " + it->second.input +
                         ", which is " +
                         std::string(volatility_name(it->second.input_volatility))});
  }
  for (const auto& [oid, location] : writes_) {
    const auto it = io.find(oid);
    if (it != io.end() && it->second.output_volatility != "i")
      offenders_.push_back(
          {location, "the cast of " + it->second.name + " to text writes it with " +
                         it->second.output + ", which is " +
                         std::string(volatility_name(it->second.output_volatility))});
  }
  if (unknown_write_ && !reads_.empty())
    for (const auto& [oid, entry] : io)
      if (entry.output_volatility != "i")
        offenders_.push_back(
            {reads_.front().second, "a cast through text may write a " + entry.name + " with " +
                                        entry.output + ", which is " +
                                        std::string(volatility_name(entry.output_volatility))});
}

void Judgement::judge_moving_literals(const std::map<std::string, TypeIo>& io,
                                      std::size_t expression_at,
                                      const std::vector<StringLiteral>& literals) {
  for (const auto& [oid, location] : constants_) {
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
        offenders_.push_back({location, "the " + it->second.name + " literal '" + literal->value +
                                            "' means a different value whenever the query runs"});
        break;
      }
  }
}

void Judgement::judge_type_io(std::size_t expression_at,
                              const std::vector<StringLiteral>& literals) {
  const auto types = io_types();
  if (types.empty()) return;
  const auto io = load_type_io(types);
  judge_casts(io);
  judge_moving_literals(io, expression_at, literals);
}

DeterminismVerdict Judgement::verdict() const {
  DeterminismVerdict out;
  out.cross_table = cross_table_;
  out.locks_rows = locks_rows_;
  if (offenders_.empty()) return out;
  // Report the first one in the expression (those without a location last).
  const auto first = std::min_element(offenders_.begin(), offenders_.end(),
                                      [](const Offender& a, const Offender& b) {
                                        if ((a.location < 0) != (b.location < 0))
                                          return b.location < 0;
                                        return a.location < b.location;
                                      });
  out.location = first->location;
  out.cause = first->cause;
  return out;
}

}  // namespace

DeterminismVerdict judge_determinism(ControlConnection& connection, std::string_view tree,
                                     const std::string& view_oid, const std::string& entity_oid,
                                     std::size_t expression_at,
                                     const std::vector<StringLiteral>& literals) {
  Judgement judgement(connection, view_oid, entity_oid);
  for (const auto& node : read_query_tree(tree)) judgement.read(node);
  judgement.judge_functions();
  judgement.judge_operators();
  judgement.judge_type_io(expression_at, literals);
  return judgement.verdict();
}

}  // namespace seedproxy::seeds
