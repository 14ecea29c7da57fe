// Admin console commands as typed: splitting a simple Query into statements and recognising each
// command (keywords in any case), or the PostgreSQL-style error that refuses it. Pure: no I/O.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace seedproxy::proxy {

enum class AdminVerb {
  show_seeds,
  show_materializations,
  show_clients,
  show_pools,
  show_stats,
  show_config,
  reload,
  pause,
  resume,
  materialize,
  rollback,
  kill,  // KILL db: the proxy lets a database go (its sessions and its own connections)
};

struct AdminCommand {
  AdminVerb verb = AdminVerb::show_seeds;
  std::string target;  // MATERIALIZE / ROLLBACK: "entity.attribute" as typed; KILL: the database
};

struct AdminError {
  std::string_view code;  // SQLSTATE
  std::string message;
  std::string hint;
};

// Statements of a simple Query, split at ';' outside quotes; comments dropped, surrounding
// whitespace trimmed, empty statements left out.
[[nodiscard]] std::vector<std::string> split_statements(std::string_view query);

[[nodiscard]] std::variant<AdminCommand, AdminError> parse_command(std::string_view statement);

// An ERROR-severity ErrorResponse for `error`.
[[nodiscard]] std::vector<std::byte> error_bytes(const AdminError& error);

}  // namespace seedproxy::proxy
