// Admin console commands: splitting a simple Query into statements, recognising each command
// (keywords in any case), and answering it with rows or a PostgreSQL-style error.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/admin/admin_backend.hpp"

namespace seedproxy::proxy {

enum class AdminVerb {
  show_seeds,
  show_materializations,
  show_clients,
  show_stats,
  show_config,
  reload,
  pause,
  resume,
  materialize,
  rollback,
};

struct AdminCommand {
  AdminVerb verb = AdminVerb::show_seeds;
  std::string target;  // MATERIALIZE / ROLLBACK: "entity.attribute" as typed
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

struct AdminAnswer {
  std::vector<std::byte> bytes;  // the result messages, or one ErrorResponse
  bool failed = false;           // an error: the rest of the Query is skipped
};

[[nodiscard]] boost::asio::awaitable<AdminAnswer> answer(const AdminCommand& command,
                                                         AdminBackend& backend);

// An ERROR-severity ErrorResponse for `error`.
[[nodiscard]] std::vector<std::byte> error_bytes(const AdminError& error);

}  // namespace seedproxy::proxy
