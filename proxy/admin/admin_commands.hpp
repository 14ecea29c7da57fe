// Admin console commands answered: rows from the AdminBackend, or a PostgreSQL-style error.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/admin/admin_backend.hpp"
#include "proxy/admin/admin_command_parser.hpp"

namespace seedproxy::proxy {

struct AdminAnswer {
  std::vector<std::byte> bytes;  // the result messages, or one ErrorResponse
  bool failed = false;           // an error: the rest of the Query is skipped
};

[[nodiscard]] boost::asio::awaitable<AdminAnswer> answer(const AdminCommand& command,
                                                         AdminBackend& backend);

}  // namespace seedproxy::proxy
