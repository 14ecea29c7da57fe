// libpq connection setup with keyword/value parameters and checked, parameterised queries.
#include "seeds/control/control_connection.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace seedproxy::seeds {

std::string text_at(const Result& result, int row, int column) {
  return PQgetvalue(result.get(), row, column);
}

std::uint64_t count_at(const Result& result, int row, int column) noexcept {
  const char* text = PQgetvalue(result.get(), row, column);
  std::uint64_t out = 0;
  std::from_chars(text, text + std::strlen(text), out);
  return out;
}

bool null_at(const Result& result, int row, int column) noexcept {
  return PQgetisnull(result.get(), row, column) != 0;
}

std::string text_array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (const char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

ControlTarget control_target(const config::Config& config) {
  ControlTarget target{config.upstream.hosts, "any", config.control.user, config.control.password,
                       config.limits.connect_timeout_seconds};
  if (config.upstream.several())
    target.target_session_attrs = std::string(to_string(config.upstream.target_session_attrs));
  const auto& tls = config.server_tls;
  target.sslmode = std::string(config::to_string(tls.sslmode));
  target.sslrootcert = tls.ca_file;
  target.sslcert = tls.cert_file;
  target.sslkey = tls.key_file;
  return target;
}

PGconn* connect_to(const ControlTarget& target, const std::string& database,
                   const char* application_name, int tcp_user_timeout_ms) {
  // libpq's multi-host form: "a,b" and "5432,5433", one entry per host in the same order.
  std::string host, port;
  for (const auto& endpoint : target.hosts) {
    if (!port.empty()) {
      host += ',';
      port += ',';
    }
    host += endpoint.host;
    port += std::to_string(endpoint.port);
  }
  const std::string timeout =
      std::to_string(std::max(1L, std::lround(std::ceil(target.connect_timeout_seconds))));
  std::vector<const char*> keywords{"host",
                                    "port",
                                    "user",
                                    "dbname",
                                    "application_name",
                                    "connect_timeout",
                                    "target_session_attrs"};
  std::vector<const char*> values{host.c_str(),
                                  port.c_str(),
                                  target.user.c_str(),
                                  database.c_str(),
                                  application_name,
                                  timeout.c_str(),
                                  target.target_session_attrs.c_str()};
  if (target.password) {
    keywords.push_back("password");
    values.push_back(target.password->c_str());
  }
  // Never libpq's own default (prefer): a control connection encrypts exactly as server_tls says.
  keywords.push_back("sslmode");
  values.push_back(target.sslmode.c_str());
  for (const auto& [keyword, file] :
       {std::pair{"sslrootcert", &target.sslrootcert}, std::pair{"sslcert", &target.sslcert},
        std::pair{"sslkey", &target.sslkey}}) {
    if (file->empty()) continue;
    keywords.push_back(keyword);
    values.push_back(file->c_str());
  }
  const std::string user_timeout = std::to_string(tcp_user_timeout_ms);
  if (tcp_user_timeout_ms > 0) {
    keywords.push_back("tcp_user_timeout");
    values.push_back(user_timeout.c_str());
    keywords.push_back("keepalives_idle");  // an idle LISTEN connection is probed too
    values.push_back("1");
    keywords.push_back("keepalives_interval");
    values.push_back("1");
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  return PQconnectdbParams(keywords.data(), values.data(), 0);
}

ControlConnection::ControlConnection(const ControlTarget& target, const std::string& database,
                                     const char* application_name, int tcp_user_timeout_ms) {
  connection_ = connect_to(target, database, application_name, tcp_user_timeout_ms);
  if (!connection_ || PQstatus(connection_) != CONNECTION_OK) {
    std::string message = connection_ ? PQerrorMessage(connection_) : "out of memory";
    while (!message.empty() && message.back() == '\n') message.pop_back();
    // The server asked for a password: it was reached, and refused the credentials.
    const bool authentication_failed = connection_ && (PQconnectionUsedPassword(connection_) ||
                                                       PQconnectionNeedsPassword(connection_));
    if (connection_) PQfinish(connection_);
    connection_ = nullptr;
    throw ConnectError("control connection to database \"" + database + "\" as \"" + target.user +
                           "\" failed: " + message,
                       authentication_failed);
  }
}

ControlConnection::~ControlConnection() {
  if (connection_) PQfinish(connection_);
}

Result ControlConnection::query(const char* purpose, const std::string& sql,
                                const std::vector<std::string>& parameters) {
  std::vector<const char*> values;
  values.reserve(parameters.size());
  for (const auto& p : parameters) values.push_back(p.c_str());
  Result result(PQexecParams(connection_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0));
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = PQerrorMessage(connection_);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    const char* sqlstate = result ? PQresultErrorField(result.get(), PG_DIAG_SQLSTATE) : nullptr;
    throw QueryError(std::string(purpose) + " failed: " + message, sqlstate ? sqlstate : "");
  }
  return result;
}

ServerError ControlConnection::server_error(const PGresult* result, const char* purpose) const {
  const char* sqlstate = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // libpq's own failures (lost connection, out of memory) carry no SQLSTATE from the server.
  if (!sqlstate || PQstatus(connection_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(connection_);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw std::runtime_error(std::string(purpose) + " failed: " + message);
  }
  ServerError error;
  error.sqlstate = sqlstate;
  if (const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY))
    error.message = primary;
  if (const char* detail = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL))
    error.detail = detail;
  if (const char* hint = PQresultErrorField(result, PG_DIAG_MESSAGE_HINT)) error.hint = hint;
  if (const char* position = PQresultErrorField(result, PG_DIAG_STATEMENT_POSITION))
    error.position = std::atoi(position);
  return error;
}

std::variant<Result, ServerError> ControlConnection::try_query(
    const std::string& sql, const std::vector<std::string>& parameters) {
  std::vector<const char*> values;
  values.reserve(parameters.size());
  for (const auto& p : parameters) values.push_back(p.c_str());
  Result result(PQexecParams(connection_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0));
  const auto status = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) return result;
  return server_error(result.get(), "statement");
}

std::optional<ServerError> ControlConnection::try_prepare(const std::string& sql) {
  Result result(PQprepare(connection_, "", sql.c_str(), 0, nullptr));
  if (result && PQresultStatus(result.get()) == PGRES_COMMAND_OK) return std::nullopt;
  return server_error(result.get(), "prepare");
}

bool ControlConnection::healthy() const noexcept { return PQstatus(connection_) == CONNECTION_OK; }

bool ControlConnection::in_transaction() const noexcept {
  const auto status = PQtransactionStatus(connection_);
  return status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
}

}  // namespace seedproxy::seeds
