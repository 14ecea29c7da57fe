// Noticing a broken cross-table dependency (see dependency_check.hpp).
#include "seeds/materialize/dependency_check.hpp"

#include "common/identifiers.hpp"
#include "seeds/registry/seed_dependencies.hpp"

namespace seedproxy::seeds {

std::string broken_dependency(ControlConnection& connection, const std::string& database,
                              const EngineSeed& seed) {
  if (!seed.cross_table || seed.phase == rewriter::Phase::rolled_back) return "";
  // As the validator checked it when the seed was declared: preparing plans, and runs nothing.
  const std::string statement = "SELECT 1 FROM ONLY " + pg::quote_identifier(seed.name.schema) +
                                "." + pg::quote_identifier(seed.name.table) + " AS " +
                                pg::quote_identifier(seed.name.table) + " WHERE ((" +
                                seed.expression + "))::" + seed.type + " IS NULL";
  const auto error = connection.try_prepare(statement);
  // Class 42 (an undefined column, table, function, type or operator): the catalog changed under
  // the expression. Anything else (a lost connection, a timeout) says nothing about the seed.
  if (!error || error->sqlstate.rfind("42", 0) != 0) return "";
  const std::string full = database + "." + seed.name.text();
  return error->message + ": DDL dropped, renamed or changed a table or column the seed reads" +
         (seed.phase == rewriter::Phase::virtual_
              ? ", so reading it fails"
              : ", so every write to its table and to the tables it reads fails") +
         "; run ROLLBACK " + full +
         " on the admin console (and declare the seed again to fit the new schema), or undo the "
         "DDL";
}

void record_broken_dependencies(ControlConnection& connection, const std::string& database,
                                std::vector<EngineSeed>& seeds) {
  for (auto& seed : seeds) {
    std::string error = broken_dependency(connection, database, seed);
    if (error == seed.dependency_error) continue;
    (void)write_dependency_error(connection, database, seed.name.schema, seed.name.table,
                                 seed.name.attribute, error);
    seed.dependency_error = std::move(error);
  }
}

}  // namespace seedproxy::seeds
