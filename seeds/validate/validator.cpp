// Seed validation against the live database: entity and key, attribute name, one scalar
// expression that type-checks, determinism. Nothing is changed: the checks are catalog reads, an
// unnamed prepared statement that never runs, and a temporary view inside a rolled-back
// transaction (or savepoint).
#include "seeds/validate/validator.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>
#include <optional>
#include <stdexcept>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "common/text.hpp"
#include "seeds/control/catalog_loader.hpp"
#include "seeds/validate/determinism.hpp"
#include "seeds/validate/expression_scan.hpp"
#include "seeds/validate/plan_cost.hpp"

namespace seedproxy::seeds {
namespace {

constexpr const char* check_view = "seedproxy_seed_check";

constexpr std::array<std::string_view, 6> system_columns{"tableoid", "cmax", "xmax",
                                                         "cmin",     "xmin", "ctid"};

[[nodiscard]] bool plain_identifier(std::string_view text) noexcept {
  auto start = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
  auto part = [&](char c) { return start(c) || (c >= '0' && c <= '9') || c == '$'; };
  return !text.empty() && start(text.front()) && std::all_of(text.begin() + 1, text.end(), part);
}

// Error positions count characters; the validator works in ints like PostgreSQL's positions.
[[nodiscard]] int utf8_chars(std::string_view text) {
  return static_cast<int>(text::utf8_count(text));
}

// The rule PostgreSQL's refusal of a check statement breaks, and the SQLSTATE the seed's refusal
// carries: the server's own where it names the rule, invalid_object_definition for the rest.
struct BrokenRule {
  const char* sqlstate;
  const char* rule;
};

[[nodiscard]] BrokenRule rule_of(const ServerError& error) {
  const std::string& state = error.sqlstate;
  if (state == sqlstate::undefined_column) return {sqlstate::undefined_column, "column"};
  if (state == sqlstate::datatype_mismatch || state == sqlstate::cannot_coerce)
    return {sqlstate::datatype_mismatch, "type"};
  if (state == sqlstate::grouping_error) return {sqlstate::grouping_error, "aggregate"};
  if (state == sqlstate::windowing_error) return {sqlstate::windowing_error, "window"};
  if (state == sqlstate::undefined_function) return {sqlstate::undefined_function, "function"};
  if (state == sqlstate::insufficient_privilege)
    return {sqlstate::insufficient_privilege, "privilege"};
  if (state == sqlstate::feature_not_supported)
    // The rule's name only: one code covers set-returning functions in WHERE and the rest.
    return {
        sqlstate::feature_not_supported,
        error.message.find("set-returning") != std::string::npos ? "set-returning" : "expression"};
  if (state == sqlstate::syntax_error) return {sqlstate::syntax_error, "expression"};
  return {sqlstate::invalid_object_definition, "expression"};
}

// Opens a transaction (or a savepoint inside the caller's) and always rolls it back.
class RolledBack {
 public:
  explicit RolledBack(ControlConnection& connection)
      : connection_(connection), nested_(connection.in_transaction()) {
    (void)connection_.query("seed validation: begin",
                            nested_ ? "SAVEPOINT seedproxy_validation" : "BEGIN");
    try {
      // Checking must never queue behind a long lock holder (and stall others queued after it).
      (void)connection_.query("seed validation: lock timeout", "SET LOCAL lock_timeout = '5s'");
    } catch (...) {
      roll_back();  // the destructor does not run for a half-built object
      throw;
    }
  }
  RolledBack(const RolledBack&) = delete;
  RolledBack& operator=(const RolledBack&) = delete;
  ~RolledBack() { roll_back(); }

 private:
  void roll_back() noexcept {
    try {
      if (nested_) {
        (void)connection_.try_query("ROLLBACK TO SAVEPOINT seedproxy_validation");
        (void)connection_.try_query("RELEASE SAVEPOINT seedproxy_validation");
      } else {
        (void)connection_.try_query("ROLLBACK");
      }
    } catch (...) {
      // The connection is gone; the server rolled everything back itself.
    }
  }

  ControlConnection& connection_;
  bool nested_;
};

// One validation: the seed, its folded names and the statements it builds.
// A planner estimate for a message: four significant digits ("4.262e+05", "0.0155").
[[nodiscard]] std::string cost_text(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

class Validation {
 public:
  Validation(ControlConnection& connection, const config::SeedSpec& seed,
             const ValidationOptions& options)
      : connection_(connection), seed_(seed), options_(options), name_(seed_name(seed)) {}

  std::variant<ValidatedSeed, Refusal> run();

 private:
  [[nodiscard]] Refusal refuse(const char* sqlstate, std::string rule, const std::string& cause,
                               int position = 0) const;
  // A refusal from PostgreSQL's answer to `statement`, whose expression starts at byte
  // `expression_at`. Throws when the answer is about the server, not the seed.
  [[nodiscard]] Refusal refuse(const ServerError& error, std::string_view statement,
                               std::size_t expression_at) const;
  // 1-based character position in the expression of byte `location` of a statement whose
  // expression starts at byte `expression_at`; clamped into the expression.
  [[nodiscard]] int position_of(int location_in_statement, std::size_t expression_at) const;
  // The server itself is in trouble (or busy): not the seed's fault, so not a refusal.
  void throw_if_server_trouble(const ServerError& error) const;

  [[nodiscard]] std::optional<Refusal> check_attribute_syntax();
  [[nodiscard]] std::optional<Refusal> check_entity();
  [[nodiscard]] std::optional<Refusal> check_attribute_column();
  [[nodiscard]] std::optional<Refusal> check_type();
  [[nodiscard]] std::optional<Refusal> check_expression();
  [[nodiscard]] std::optional<Refusal> check_determinism();
  [[nodiscard]] std::optional<Refusal> check_cost_ratio();
  [[nodiscard]] std::optional<Refusal> check_cost();
  [[nodiscard]] std::optional<Refusal> check_rewriter();
  // A cross-table seed: which seed rows a change to each table it reads can affect.
  void read_dependencies(std::string_view tree);

  ControlConnection& connection_;
  const config::SeedSpec& seed_;
  ValidationOptions options_;
  std::string name_;
  ValidatedSeed out_;
  std::string relation_oid_;
  std::string from_clause_;  // FROM ONLY "schema"."table" AS "table"
  std::vector<StringLiteral> literals_;
};

Refusal Validation::refuse(const char* sqlstate, std::string rule, const std::string& cause,
                           int position) const {
  std::string message = "seed " + name_ + " refused (" + rule + "): " + cause;
  if (position > 0) message += " (at character " + std::to_string(position) + " of the expression)";
  return Refusal{name_, std::move(rule), std::move(message), position, sqlstate};
}

int Validation::position_of(int location, std::size_t expression_at) const {
  if (location < 0) return 0;
  const int expression_chars = utf8_chars(seed_.expression);
  if (expression_chars == 0) return 0;
  const auto at = static_cast<std::size_t>(location);
  if (at < expression_at) return 1;
  const int position =
      utf8_chars(std::string_view(seed_.expression).substr(0, at - expression_at)) + 1;
  return std::clamp(position, 1, expression_chars);
}

void Validation::throw_if_server_trouble(const ServerError& error) const {
  const std::string& state = error.sqlstate;
  if (state == sqlstate::lock_not_available || state == sqlstate::query_canceled ||
      state == sqlstate::in_failed_sql_transaction || state.starts_with("08") ||
      state.starts_with("53") || state.starts_with("57") || state.starts_with("58") ||
      state.starts_with("XX"))
    throw std::runtime_error("checking seed " + name_ + " failed: " + error.message);
}

Refusal Validation::refuse(const ServerError& error, std::string_view statement,
                           std::size_t expression_at) const {
  throw_if_server_trouble(error);
  const BrokenRule broken = rule_of(error);
  std::string cause = "PostgreSQL says: " + error.message;
  if (!error.detail.empty()) cause += " (" + error.detail + ")";
  if (!error.hint.empty()) cause += "; hint: " + error.hint;
  // The server counts characters in the whole statement; the expression starts after the prefix.
  int position = 0;
  if (error.position > 0) {
    const int prefix_chars = utf8_chars(statement.substr(0, expression_at));
    position =
        std::clamp(error.position - prefix_chars, 1, std::max(1, utf8_chars(seed_.expression)));
  }
  return refuse(broken.sqlstate, broken.rule, cause, position);
}

std::optional<Refusal> Validation::check_attribute_syntax() {
  const std::string& written = seed_.attribute;
  std::string attribute;
  bool quoted = false;
  if (written.size() >= 2 && written.front() == '"' && written.back() == '"') {
    // "Name" keeps its spelling, as in SQL; "" inside is one quote.
    quoted = true;
    for (std::size_t i = 1; i + 1 < written.size(); ++i) {
      if (written[i] == '"') {
        if (i + 2 < written.size() && written[i + 1] == '"') {
          ++i;
        } else {
          return refuse(sqlstate::invalid_name, "attribute",
                        "the attribute " + written +
                            " is not a valid identifier: a quote inside a "
                            "double-quoted name must be doubled");
        }
      }
      attribute += written[i];
    }
  } else if (plain_identifier(written)) {
    attribute = text::ascii_lower(written);  // PostgreSQL folds unquoted names to lower case
  } else {
    return refuse(sqlstate::invalid_name, "attribute",
                  "the attribute \"" + written +
                      "\" is not a valid identifier: use letters, digits, _ and $, "
                      "starting with a letter or _ (or a double-quoted name)");
  }
  if (attribute.empty())
    return refuse(sqlstate::invalid_name, "attribute", "the attribute name is empty");
  if (attribute.find('\0') != std::string::npos)
    return refuse(sqlstate::invalid_name, "attribute", "the attribute name contains a NUL byte");
  if (attribute.size() > pg::max_identifier_bytes)
    return refuse(sqlstate::invalid_name, "attribute",
                  "the attribute name " + pg::quote_identifier(attribute) + " is " +
                      std::to_string(attribute.size()) +
                      " bytes long; PostgreSQL allows at most 63");
  if (std::find(system_columns.begin(), system_columns.end(), attribute) != system_columns.end())
    return refuse(
        sqlstate::invalid_name, "attribute",
        pg::quote_identifier(attribute) + " is the name of a system column every table has");
  if (!quoted) {
    auto keyword = connection_.query(
        "seed validation: keywords",
        "SELECT catcode::text FROM pg_catalog.pg_get_keywords() WHERE word = $1", {attribute});
    if (PQntuples(keyword.get()) > 0) {
      const std::string category = text_at(keyword, 0, 0);
      if (category == "R" || category == "T")
        return refuse(sqlstate::invalid_name, "attribute",
                      "\"" + attribute +
                          "\" is a reserved word in PostgreSQL; clients could not "
                          "name the attribute without double quotes");
    }
  }
  out_.definition.attribute = std::move(attribute);
  return std::nullopt;
}

std::optional<Refusal> Validation::check_entity() {
  auto& definition = out_.definition;
  if (!pg::split_entity(seed_.entity, definition.schema, definition.table))
    return refuse(sqlstate::invalid_name, "entity",
                  "the entity \"" + seed_.entity +
                      "\" is not \"table\" or \"schema.table\" (each an identifier or "
                      "a double-quoted name)");
  for (const auto* part : {&definition.schema, &definition.table})
    if (part->size() > pg::max_identifier_bytes)
      return refuse(
          sqlstate::invalid_name, "entity",
          "the name " + pg::quote_identifier(*part) + " in the entity is longer than 63 bytes");
  const std::string shown =
      pg::quote_identifier(definition.schema) + "." + pg::quote_identifier(definition.table);
  auto relation =
      connection_.query("seed validation: entity",
                        "SELECT c.oid::text, c.relkind::text FROM pg_catalog.pg_class c "
                        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = $1 AND c.relname = $2",
                        {definition.schema, definition.table});
  if (PQntuples(relation.get()) == 0) {
    auto schema = connection_.query("seed validation: schema",
                                    "SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1",
                                    {definition.schema});
    if (PQntuples(schema.get()) == 0)
      return refuse(sqlstate::invalid_schema_name, "entity",
                    "schema " + pg::quote_identifier(definition.schema) +
                        " does not exist in database \"" + seed_.database + "\"");
    return refuse(sqlstate::undefined_table, "entity",
                  "table " + shown + " does not exist in database \"" + seed_.database + "\"");
  }
  relation_oid_ = text_at(relation, 0, 0);
  const std::string kind = text_at(relation, 0, 1);
  if (kind != "r" && kind != "p") {
    static const std::map<std::string, std::string> kinds{
        {"v", "a view"},           {"m", "a materialized view"},
        {"f", "a foreign table"},  {"S", "a sequence"},
        {"i", "an index"},         {"I", "a partitioned index"},
        {"c", "a composite type"}, {"t", "a TOAST table"}};
    const auto it = kinds.find(kind);
    return refuse(sqlstate::wrong_object_type, "entity",
                  shown + " is " + (it != kinds.end() ? it->second : "not a table") +
                      "; a seed extends an ordinary or partitioned table");
  }
  from_clause_ = "FROM ONLY " + shown + " AS " + pg::quote_identifier(definition.table);

  // Keys: the primary key first, then the narrowest unique key; only keys on plain columns.
  auto keys = connection_.query(
      "seed validation: keys",
      "SELECT i.indexrelid::text, a.attname, a.attnotnull::text "
      "FROM pg_catalog.pg_index i "
      "CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
      "WHERE i.indrelid = $1::oid AND (i.indisprimary OR i.indisunique) AND i.indisvalid "
      "AND i.indpred IS NULL AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts "
      "ORDER BY i.indisprimary DESC, i.indnkeyatts, i.indexrelid, k.ord",
      {relation_oid_});
  const int rows = PQntuples(keys.get());
  for (int row = 0; row < rows && out_.key_columns.empty();) {
    const std::string index = text_at(keys, row, 0);
    std::vector<std::string> columns;
    bool not_null = true;
    for (; row < rows && text_at(keys, row, 0) == index; ++row) {
      columns.push_back(text_at(keys, row, 1));
      not_null = not_null && text_at(keys, row, 2) == "true";
    }
    if (not_null) out_.key_columns = std::move(columns);
  }
  if (out_.key_columns.empty() && seed_.materialize.policy != config::MaterializePolicy::never)
    return refuse(sqlstate::feature_not_supported, "key",
                  "table " + shown +
                      " has no primary key and no unique key whose columns are all NOT "
                      "NULL, which materializing needs; add one, or set "
                      "materialize.policy to \"never\" to keep the seed virtual");
  return std::nullopt;
}

std::optional<Refusal> Validation::check_attribute_column() {
  if (options_.column_added_by_proxy) return std::nullopt;
  auto column = connection_.query(
      "seed validation: attribute",
      "SELECT 1 FROM pg_catalog.pg_attribute "
      "WHERE attrelid = $1::oid AND attname = $2 AND attnum > 0 AND NOT attisdropped",
      {relation_oid_, out_.definition.attribute});
  if (PQntuples(column.get()) > 0)
    return refuse(sqlstate::duplicate_column, "attribute",
                  "table " + pg::quote_identifier(out_.definition.schema) + "." +
                      pg::quote_identifier(out_.definition.table) + " already has a column named " +
                      pg::quote_identifier(out_.definition.attribute));
  return std::nullopt;
}

std::optional<Refusal> Validation::check_type() {
  const auto scan = scan_pasted_text(seed_.type);
  if (scan.problem)
    return refuse(sqlstate::datatype_mismatch, "type",
                  "the type \"" + seed_.type + "\" " + scan.problem->cause);
  auto answer = connection_.try_query(
      "SELECT pg_catalog.format_type(pg_catalog.to_regtype($1), NULL)", {seed_.type});
  if (const auto* error = std::get_if<ServerError>(&answer)) {
    throw_if_server_trouble(*error);
    return refuse(sqlstate::datatype_mismatch, "type",
                  "\"" + seed_.type + "\" is not a type name; PostgreSQL says: " + error->message);
  }
  const auto& result = std::get<Result>(answer);
  if (PQgetisnull(result.get(), 0, 0))
    return refuse(
        sqlstate::undefined_object, "type",
        "type \"" + seed_.type + "\" does not exist in database \"" + seed_.database + "\"");
  out_.definition.type = seed_.type;
  return std::nullopt;
}

std::optional<Refusal> Validation::check_expression() {
  auto conforming =
      connection_.query("seed validation: string syntax", "SELECT pg_catalog.current_setting($1)",
                        {"standard_conforming_strings"});
  const auto scan = scan_pasted_text(seed_.expression, text_at(conforming, 0, 0) != "on");
  if (scan.problem) {
    const int position =
        utf8_chars(std::string_view(seed_.expression).substr(0, scan.problem->offset)) + 1;
    return refuse(sqlstate::invalid_object_definition, "expression",
                  "the expression " + scan.problem->cause, position);
  }
  literals_ = scan.literals;
  // A WHERE clause refuses top-level aggregates, window and set-returning functions but allows
  // them inside scalar subqueries; the cast type-checks; preparing runs nothing.
  const std::string prefix = "SELECT 1 " + from_clause_ + " WHERE ((";
  const std::string statement = prefix + seed_.expression + "))::" + seed_.type + " IS NULL";
  if (auto error = connection_.try_prepare(statement))
    return refuse(*error, statement, prefix.size());
  out_.definition.expression = seed_.expression;
  return std::nullopt;
}

std::optional<Refusal> Validation::check_determinism() {
  const std::string prefix =
      "CREATE TEMPORARY VIEW " + pg::quote_identifier(check_view) + " AS SELECT ((";
  const std::string statement = prefix + seed_.expression + "))::" + seed_.type + " AS " +
                                pg::quote_identifier("value") + " " + from_clause_;
  auto created = connection_.try_query(statement);
  if (const auto* error = std::get_if<ServerError>(&created))
    return refuse(*error, statement, prefix.size());
  auto view =
      connection_.query("seed validation: view",
                        "SELECT c.oid::text, r.ev_action::text FROM pg_catalog.pg_class c "
                        "JOIN pg_catalog.pg_rewrite r ON r.ev_class = c.oid "
                        "WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relname = $1",
                        {check_view});
  if (PQntuples(view.get()) != 1)
    throw std::runtime_error("checking seed " + name_ + " failed: its check view is missing");
  const auto verdict = judge_determinism(connection_, text_at(view, 0, 1), text_at(view, 0, 0),
                                         relation_oid_, prefix.size(), literals_);
  out_.cross_table = verdict.cross_table;
  if (verdict.cross_table) read_dependencies(text_at(view, 0, 1));
  if (verdict.locks_rows)
    return refuse(sqlstate::invalid_object_definition, "expression",
                  "a subquery locks rows (FOR UPDATE/SHARE); reading a seed must never lock rows");
  if (verdict.cause.empty()) return std::nullopt;
  const int position = verdict.location >= 0 ? position_of(verdict.location, prefix.size()) : 0;
  return refuse(sqlstate::invalid_object_definition, "deterministic",
                verdict.cause +
                    "; a seed's expression must give the same value for the same row every time, "
                    "so it may use only IMMUTABLE functions and operators",
                position);
}

std::optional<Refusal> Validation::check_cost_ratio() {
  const auto& bounds = options_.bounds;
  // In a savepoint: a refused EXPLAIN must not abort the transaction the next checks run in.
  (void)connection_.query("seed validation: savepoint", "SAVEPOINT seedproxy_plan_cost");
  const auto with_seed = estimate(
      connection_, "SELECT ((" + seed_.expression + "))::" + seed_.type + " " + from_clause_);
  const auto table = estimate(connection_, "SELECT * " + from_clause_);
  (void)connection_.query("seed validation: savepoint",
                          "ROLLBACK TO SAVEPOINT seedproxy_plan_cost");
  if (!with_seed || !table) return std::nullopt;  // no estimate: the sampled run still judges
  // Per row of the table, as the planner sees both; an empty table is counted as one row, and a
  // table's own cost never below one page's read.
  const double rows = std::max(table->rows, 1.0);
  const double own = std::max(table->total, 1.0) / rows;
  const double added = with_seed->total / rows;
  const double ratio = added / own;
  if (ratio <= bounds.max_cost_ratio) return std::nullopt;
  const std::string cause =
      "its estimated cost is " + cost_text(added) + " per row of " + out_.definition.table + ", " +
      cost_text(ratio) + " times the table's own (" + cost_text(own) +
      " per row; EXPLAIN of SELECT expression FROM table against SELECT " +
      "* FROM table), above validation.max_cost_ratio " + cost_text(bounds.max_cost_ratio) +
      "; a seed is computed on every read of it, so it must be cheap";
  if (bounds.cost_action == config::CostAction::warn) {
    out_.warnings.push_back("seed " + name_ + ": " + cause);
    return std::nullopt;
  }
  return refuse(sqlstate::program_limit_exceeded, "cost", cause);
}

std::optional<Refusal> Validation::check_cost() {
  const auto timeout_ms = static_cast<long>(options_.bounds.statement_timeout_seconds * 1000);
  (void)connection_.query("seed validation: statement timeout",
                          "SELECT pg_catalog.set_config('statement_timeout', $1, true)",
                          {std::to_string(timeout_ms) + "ms"});
  // A few real rows, or one row of NULLs for an empty table, so that an uncorrelated subquery
  // runs too. The alias is the one the expression was checked against.
  const std::string statement = "SELECT ((" + seed_.expression + "))::" + seed_.type +
                                " FROM (SELECT) AS seedproxy_one LEFT JOIN LATERAL (SELECT * " +
                                from_clause_ + " LIMIT " +
                                std::to_string(options_.bounds.sample_rows) + ") AS " +
                                pg::quote_identifier(out_.definition.table) + " ON true";
  auto answer = connection_.try_query(statement);
  const auto* error = std::get_if<ServerError>(&answer);
  // Other errors (division by zero on some row, say) are the data's, as they would be for a
  // generated column; only the cost is judged here.
  if (!error || error->sqlstate != sqlstate::query_canceled) return std::nullopt;
  return refuse(sqlstate::program_limit_exceeded, "cost",
                "evaluating it for " + std::to_string(options_.bounds.sample_rows) + " rows of " +
                    out_.definition.table +
                    " did not finish within validation's statement timeout (" +
                    log::seconds_text(options_.bounds.statement_timeout_seconds) +
                    "); a seed is computed on every read of it, so it must be cheap");
}

void Validation::read_dependencies(std::string_view tree) {
  try {
    out_.dependencies = analyse_dependencies(connection_, tree, relation_oid_);
  } catch (const QueryError&) {
    throw;  // the database, not the seed
  } catch (const std::runtime_error& error) {
    // Not the seed's fault either, but it must not stop a seed that works virtually.
    out_.dependencies = {};
    out_.dependencies.refusal =
        std::string("the proxy could not read its query tree (") + error.what() + ")";
  }
}

std::optional<Refusal> Validation::check_rewriter() {
  // The proxy's rewriter must be able to splice the expression into clients' statements.
  const rewriter::Catalog catalog = load_catalog(connection_, 0);
  std::vector<std::string> errors;
  rewriter::SeedDefinition definition = out_.definition;
  // A column the proxy added is expected; the rewriter checks the name only for virtual seeds.
  if (options_.column_added_by_proxy) definition.phase = rewriter::Phase::materializing;
  (void)rewriter::SeedSet::compile({definition}, catalog, 0, errors);
  if (!errors.empty())
    return refuse(sqlstate::invalid_object_definition, "expression",
                  "the proxy cannot rewrite it: " + errors.front());
  return std::nullopt;
}

std::variant<ValidatedSeed, Refusal> Validation::run() {
  out_.definition.phase = rewriter::Phase::virtual_;
  if (auto refusal = check_attribute_syntax()) return *refusal;
  if (auto refusal = check_entity()) return *refusal;
  if (auto refusal = check_attribute_column()) return *refusal;
  if (auto refusal = check_type()) return *refusal;
  {
    RolledBack transaction(connection_);
    if (auto refusal = check_expression()) return *refusal;
    if (auto refusal = check_determinism()) return *refusal;
    if (auto refusal = check_cost_ratio()) return *refusal;
    if (auto refusal = check_cost()) return *refusal;
  }
  if (auto refusal = check_rewriter()) return *refusal;
  return std::move(out_);
}

}  // namespace

std::string seed_name(const config::SeedSpec& seed) {
  return seed.database + "." + seed.entity + "." + seed.attribute;
}

std::variant<ValidatedSeed, Refusal> validate_seed(ControlConnection& connection,
                                                   const config::SeedSpec& seed,
                                                   const ValidationOptions& options) {
  return Validation(connection, seed, options).run();
}

}  // namespace seedproxy::seeds
