// LISTEN seedproxy_registry on the database's registry connection, read with
// PQconsumeInput/PQnotifies.
#include "seeds/registry/registry_listener.hpp"

#include <cstring>
#include <stdexcept>

#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {
namespace {

std::string last_error(PGconn* connection) {
  std::string message = connection ? PQerrorMessage(connection) : "out of memory";
  while (!message.empty() && message.back() == '\n') message.pop_back();
  return message;
}

}  // namespace

RegistryListener::RegistryListener(const ControlTarget& target, const std::string& database,
                                   int tcp_user_timeout_ms)
    : connection_(target, database, "seedproxy registry", tcp_user_timeout_ms),
      database_(database) {
  try {
    (void)connection_.query("LISTEN on the registry channel",
                            std::string("LISTEN \"") + registry_channel + "\"");
  } catch (const std::exception& e) {
    throw std::runtime_error("registry connection to database \"" + database + "\": " + e.what());
  }
}

int RegistryListener::socket() const noexcept { return PQsocket(connection_.native()); }

bool RegistryListener::drain() {
  PGconn* native = connection_.native();
  if (PQconsumeInput(native) == 0 || PQstatus(native) != CONNECTION_OK)
    throw std::runtime_error("registry connection to database \"" + database_ +
                             "\" was lost: " + last_error(native));
  bool notified = false;
  while (PGnotify* notify = PQnotifies(native)) {
    if (std::strcmp(notify->relname, registry_channel) == 0) notified = true;
    PQfreemem(notify);
  }
  return notified;
}

}  // namespace seedproxy::seeds
