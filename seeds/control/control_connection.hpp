// The proxy's own libpq connection (RAII) and reading its results; control threads only, never I/O.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace seedproxy::seeds {

struct ControlTarget {
  // upstream.hosts; with several, libpq tries them in order and keeps the first that matches
  // target_session_attrs ("read-write": the primary; "any": the first that answers).
  std::vector<config::Endpoint> hosts{{"", 5432}};
  std::string target_session_attrs = "any";
  std::string user;
  std::optional<std::string> password;
  double connect_timeout_seconds = 5.0;
  // server_tls, as libpq spells it: sslmode (disable, prefer, require, verify-ca, verify-full)
  // and the files; empty files are left to libpq's defaults.
  std::string sslmode = "disable";
  std::string sslrootcert{};
  std::string sslcert{};
  std::string sslkey{};
};

// The control connections' target from the configuration: upstream, control credentials,
// connect timeout and server_tls. With one host, target_session_attrs stays "any" (as before).
[[nodiscard]] ControlTarget control_target(const config::Config& config);

struct ResultDeleter {
  void operator()(PGresult* result) const noexcept { PQclear(result); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// One field of a result as text; empty for NULL (as libpq gives it).
[[nodiscard]] std::string text_at(const Result& result, int row, int column);
// One field holding a count (bigint, integer); 0 for NULL or text that is not a number.
[[nodiscard]] std::uint64_t count_at(const Result& result, int row, int column) noexcept;
// Whether one field is NULL.
[[nodiscard]] bool null_at(const Result& result, int row, int column) noexcept;

// What the server answered when it refused a statement.
struct ServerError {
  std::string sqlstate;
  std::string message;  // primary message, without "ERROR:"
  std::string detail;
  std::string hint;
  int position = 0;  // 1-based character position in the statement, 0 when none
};

// What query() throws: the message, plus the server's SQLSTATE (empty when libpq failed before
// the server answered), so callers can tell a lock timeout (55P03) from a real error.
class QueryError : public std::runtime_error {
 public:
  QueryError(const std::string& message, std::string sqlstate)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// Opens a libpq connection to `database` with the target's credentials and connect timeout.
// `tcp_user_timeout_ms` > 0 also bounds how long sent data may stay unacknowledged (a connection
// into a network partition fails then, instead of blocking its thread for minutes).
// Returns whatever libpq made of it (possibly null or failed): the caller checks PQstatus.
[[nodiscard]] PGconn* connect_to(const ControlTarget& target, const std::string& database,
                                 const char* application_name, int tcp_user_timeout_ms = 0);

// PostgreSQL's text[] literal of `items`, every element double-quoted, for a `$n::text[]`
// parameter.
[[nodiscard]] std::string text_array_literal(const std::vector<std::string>& items);

// What the ControlConnection constructor throws: libpq's message, and whether the server asked
// for a password (so the control credentials, not the network, are what failed).
class ConnectError : public std::runtime_error {
 public:
  ConnectError(const std::string& message, bool authentication_failed)
      : std::runtime_error(message), authentication_failed_(authentication_failed) {}
  [[nodiscard]] bool authentication_failed() const noexcept { return authentication_failed_; }

 private:
  bool authentication_failed_;
};

class ControlConnection {
 public:
  // Connects to `database`; throws ConnectError (a std::runtime_error) on failure.
  ControlConnection(const ControlTarget& target, const std::string& database,
                    const char* application_name = "seedproxy", int tcp_user_timeout_ms = 0);
  ControlConnection(const ControlConnection&) = delete;
  ControlConnection& operator=(const ControlConnection&) = delete;
  ~ControlConnection();

  // Runs `sql` with `parameters` passed as text values (never spliced into the SQL).
  // Throws QueryError (a std::runtime_error) naming the statement's purpose on failure.
  [[nodiscard]] Result query(const char* purpose, const std::string& sql,
                             const std::vector<std::string>& parameters = {});

  // Like query(), but a statement the server refuses comes back as a ServerError; throws only
  // when the connection itself fails.
  [[nodiscard]] std::variant<Result, ServerError> try_query(
      const std::string& sql, const std::vector<std::string>& parameters = {});

  // Parses and analyses `sql` as the unnamed prepared statement without running it (extended
  // protocol, so it must be exactly one statement). Returns the server's refusal, if any; throws
  // only when the connection itself fails.
  [[nodiscard]] std::optional<ServerError> try_prepare(const std::string& sql);

  // Whether a transaction block is open (or failed) on this connection.
  [[nodiscard]] bool in_transaction() const noexcept;
  // Whether the connection is still usable (a failed query may have been the server going away).
  [[nodiscard]] bool healthy() const noexcept;
  // The libpq connection, for LISTEN's socket and notifications (registry_listener.cpp).
  [[nodiscard]] PGconn* native() const noexcept { return connection_; }

 private:
  // The refusal carried by a failed `result`; throws when there is none (connection trouble).
  [[nodiscard]] ServerError server_error(const PGresult* result, const char* purpose) const;

  PGconn* connection_ = nullptr;
};

}  // namespace seedproxy::seeds
