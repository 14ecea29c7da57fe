// LISTEN seedproxy_registry on a dedicated libpq connection, read with PQconsumeInput/PQnotifies.
#include "seeds/registry/registry_listener.hpp"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {
namespace {

std::string last_error(PGconn* connection) {
  std::string message = connection ? PQerrorMessage(connection) : "out of memory";
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

}  // namespace

RegistryListener::RegistryListener(const ControlTarget& target, const std::string& database)
    : database_(database) {
  connection_ = connect_to(target, database, "seedproxy listener");
  const auto fail = [&](const std::string& what) {
    const std::string message =
        what + " on database \"" + database + "\" failed: " + last_error(connection_);
    if (connection_) PQfinish(connection_);
    connection_ = nullptr;
    throw std::runtime_error(message);
  };
  if (!connection_ || PQstatus(connection_) != CONNECTION_OK) fail("registry listener connection");
  const std::string listen = std::string("LISTEN \"") + registry_channel + "\"";
  Result result(PQexec(connection_, listen.c_str()));
  if (!result || PQresultStatus(result.get()) != PGRES_COMMAND_OK) fail("LISTEN");
  if (PQsetnonblocking(connection_, 1) != 0) fail("switching the listener to non-blocking");
}

RegistryListener::~RegistryListener() {
  if (connection_) PQfinish(connection_);
}

int RegistryListener::socket() const noexcept { return PQsocket(connection_); }

bool RegistryListener::drain() {
  if (PQconsumeInput(connection_) == 0 || PQstatus(connection_) != CONNECTION_OK)
    throw std::runtime_error("registry listener on database \"" + database_ +
                             "\" lost its connection: " + last_error(connection_));
  bool notified = false;
  while (PGnotify* notify = PQnotifies(connection_)) {
    if (std::strcmp(notify->relname, registry_channel) == 0) notified = true;
    PQfreemem(notify);
  }
  return notified;
}

}  // namespace seedproxy::seeds
