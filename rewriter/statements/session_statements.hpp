// Statements that change what a session holds on the server, read from PostgreSQL's parse tree so
// the proxy can follow them: SQL PREPARE / EXECUTE / DEALLOCATE, DISCARD, and temporary tables
// created or dropped. One entry per statement PostgreSQL runs, in order, with its byte extent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::rewriter {

struct SessionStatement {
  enum class Kind : std::uint8_t {
    other,           // anything else: completes like any statement, changes nothing followed
    prepare,         // PREPARE name [(types)] AS statement
    execute,         // EXECUTE name [(params)], also under EXPLAIN or CREATE TABLE ... AS
    deallocate,      // DEALLOCATE [PREPARE] name
    deallocate_all,  // DEALLOCATE [PREPARE] ALL
    discard_all,     // DISCARD ALL
    discard_temp,    // DISCARD TEMP / TEMPORARY
    create_temp,     // CREATE TEMP TABLE / VIEW, CREATE TEMP TABLE ... AS, SELECT ... INTO TEMP
    drop,            // DROP TABLE / VIEW / MATERIALIZED VIEW / FOREIGN TABLE of names
  };
  Kind kind = Kind::other;
  // prepare, execute, deallocate: the prepared statement's name; create_temp: the relation's.
  // Names are folded as PostgreSQL folds them.
  std::string name;
  // drop: the names dropped that may be temporary relations (unqualified, or in pg_temp).
  std::vector<std::string> names;
  bool on_commit_drop = false;  // create_temp ... ON COMMIT DROP
  std::size_t begin = 0;        // bytes [begin, end) of the statement, without its ';'
  std::size_t end = 0;
};

// The statements of `sql` as PostgreSQL's parser splits them (so one CommandComplete answers each
// one that runs), or nullopt when PostgreSQL cannot parse the text and runs none of it.
[[nodiscard]] std::optional<std::vector<SessionStatement>> read_session_statements(
    std::string_view sql);

}  // namespace seedproxy::rewriter
