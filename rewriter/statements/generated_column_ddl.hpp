// Recognising `ALTER TABLE ... ADD COLUMN ... GENERATED ALWAYS AS (expr) STORED`, the DDL that
// declares a stored generated column, and taking it apart without regenerating any of its text.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace seedproxy::rewriter {

struct GeneratedColumnDdl {
  std::optional<std::string> schema;  // names as PostgreSQL folded them (quoted ones kept)
  std::string table;
  std::string column;
  std::string type;               // the type exactly as written, e.g. `numeric(8, 2)`
  std::string expression;         // exactly as written, without the parentheses around it
  std::size_t expression_at = 0;  // byte offset of `expression` in the statement's text
  bool if_not_exists = false;     // ADD COLUMN IF NOT EXISTS
  bool if_exists = false;         // ALTER TABLE IF EXISTS
  bool only = false;              // ALTER TABLE ONLY
};

// The parts of `sql` when it is exactly one statement
//   ALTER TABLE [IF EXISTS] [ONLY] [schema.]table ADD [COLUMN] [IF NOT EXISTS] column type
//     GENERATED ALWAYS AS (expression) STORED [;]
// with that one constraint and nothing else on the column (no COLLATE, COMPRESSION, OPTIONS,
// constraint name or second constraint) and one subcommand; nullopt for anything else,
// including text PostgreSQL cannot parse.
[[nodiscard]] std::optional<GeneratedColumnDdl> read_generated_column_ddl(std::string_view sql);

}  // namespace seedproxy::rewriter
