// Which rows of a seed's table a change to another table can affect, worked out from PostgreSQL's
// analysed query tree of the seed's expression: every table a scalar subquery reads must be tied to
// the seed's row by equalities between columns, directly or through a chain of other tables of the
// same subquery. What cannot be bounded that way is named in one sentence; such a seed still works
// virtually but is never materialized.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

// One equality between a column of the seed's table and a column of the table at the end of a
// mapping's path, with the hash functions of the operator's hash family for each side: equal
// values hash alike across the family's types, which is what lets both sides agree on a lock.
struct KeyEquality {
  std::string seed_column;   // a column of the seed's table
  std::string column;        // a column of the last table of the path (or of the changed table)
  std::string seed_type;     // the operator's input type on the seed's side (format_type)
  std::string type;          // ... and on the other side
  std::string seed_hash;     // "schema"."function" hashing seed_type, in the operator's family
  std::string hash;          // ... hashing type
  std::string operator_sql;  // OPERATOR("schema".=), as the expression's equality resolved

  bool operator==(const KeyEquality&) const = default;
};

// How one pair of a JoinStep's `on` is compared: the operator's input types and its hash
// family's functions on each side (empty when it belongs to no hash family), as for KeyEquality.
struct StepEquality {
  std::string from_type, to_type;  // the previous table's side, this table's side
  std::string from_hash, to_hash;
  bool from_left = true;  // the previous table's column is the operator's left argument

  bool operator==(const StepEquality&) const = default;
};

// A table between the changed table and the seed's, joined by equalities.
struct JoinStep {
  std::string schema, table;
  // (column of the previous table on the path, column of this table), each compared with `=`.
  std::vector<std::pair<std::string, std::string>> on;
  std::vector<std::string> operators_sql;  // OPERATOR("schema".=) of each pair of `on`
  std::vector<StepEquality> equalities;    // ... and its types and hash functions

  bool operator==(const JoinStep&) const = default;
};

// How a changed row of a table maps to the seed rows it can affect: follow `path` (empty: the
// table is tied to the seed's row directly), then the seed rows whose columns equal `key`.
struct DependencyMapping {
  std::vector<JoinStep> path;
  std::vector<KeyEquality> key;

  bool operator==(const DependencyMapping&) const = default;
};

struct TableDependency {
  std::string schema, table;
  std::vector<std::string> columns;  // the columns the expression reads, in attnum order
  std::vector<DependencyMapping> mappings;
};

struct SeedDependencies {
  std::vector<TableDependency> tables;  // every table the expression reads, by schema and name
  // The seed table's columns the expression reads (its row-local inputs, correlation columns
  // included), in attnum order.
  std::vector<std::string> seed_columns;
  // Why the seed cannot be materialized (one sentence), empty when every dependency is bounded.
  std::string refusal;

  // "public.txn: txn.account_id = account.id; public.region: region.id = customer.region_id,
  // customer.id = account.customer_id" (the seed's table named `seed_table`).
  [[nodiscard]] std::string describe(std::string_view seed_table) const;
};

// Why the chains of `dependencies` cannot be kept exact (one sentence), empty when they can: a
// chain through more than one middle table, a table reached both directly and through a chain,
// or a join step whose equality belongs to no hash family.
[[nodiscard]] std::string chain_refusal(const SeedDependencies& dependencies);

// `tree` is pg_rewrite.ev_action of a view `SELECT (expression) FROM ONLY entity AS ...` over the
// seed's table `entity_oid` (the validator's check view). Reads names, kinds and operators from the
// catalogs; throws QueryError only when they cannot be read, std::runtime_error for a tree it
// cannot read.
[[nodiscard]] SeedDependencies analyse_dependencies(ControlConnection& connection,
                                                    std::string_view tree,
                                                    const std::string& entity_oid);

}  // namespace seedproxy::seeds
