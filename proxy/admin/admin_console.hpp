// The admin console's conversation after login: simple Query messages only, each statement
// answered by the proxy itself with rows or an error, ReadyForQuery after each Query.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "proxy/admin/admin_backend.hpp"
#include "proxy/io/stream.hpp"

namespace seedproxy::proxy {

struct ConsoleEnd {
  std::string reason;            // for the log
  std::string_view client_code;  // FATAL SQLSTATE to tell the client; empty: none
  std::string client_message;
};

// Sends BackendKeyData and ReadyForQuery, then serves until Terminate, a closed socket or a
// protocol violation.
[[nodiscard]] boost::asio::awaitable<ConsoleEnd> serve_admin_console(Stream& client,
                                                                     AdminBackend& backend);

}  // namespace seedproxy::proxy
