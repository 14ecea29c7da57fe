// The seed registry's schema (`seedproxy` in each upstream database): created and migrated by
// the proxy itself, versioned in seedproxy.schema_version, one migration at a time under an
// advisory lock so proxies starting together never race.
#pragma once

#include <cstdint>
#include <string_view>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

// The schema version this build creates and understands.
inline constexpr int registry_schema_version = 5;

// The first version with heartbeat rows and the change counter (seedproxy.proxies,
// seedproxy.registry_state), the number of the migration that adds them (fleet_migration() in
// registry_schema.cpp): below it nobody acknowledges anything.
inline constexpr int fleet_schema_version = 3;
// The version that gave seeds their places (declared_after_attnum, declaration_order): a registry
// below it is read with the places of the seedproxy that wrote it.
inline constexpr int seed_places_version = 4;

// Advisory lock key serialising migrations and seed applications in one database
// (materialization uses its own keys).
inline constexpr std::int64_t registry_lock_key = 0x5EED9E0157E7L;

// Advisory lock key held (session level) by the one proxy materializing a database.
inline constexpr std::int64_t materializer_lock_key = 0x5EED3A7E41A1L;

// Notification channel a registry change is announced on; the payload is the database name.
inline constexpr const char* registry_channel = "seedproxy_registry";

// Notification channel a proxy announces a newly served registry version on (payload: its
// instance), so an engine waiting for acknowledgements wakes at once.
inline constexpr const char* acknowledgement_channel = "seedproxy_ack";

// Whether a database can hold a registry (and so seeds) at all: not the admin console's
// "seedproxy", not a template.
[[nodiscard]] bool watchable_database(std::string_view database) noexcept;

// The version of the registry in the connected database, 0 when there is none.
[[nodiscard]] int registry_version(ControlConnection& connection);

// The registry lock (a session-level advisory lock), taken BEFORE the transaction that migrates
// or writes the registry begins and released after it ends: a backend that waited for it must
// start its transaction afterwards, or its catalog caches would still miss a schema the other
// proxy just created. Closing the connection releases it too.
void lock_registry(ControlConnection& connection);
void unlock_registry(ControlConnection& connection);

// Inside a transaction begun while holding lock_registry(): creates the schema if needed and
// runs every migration newer than the installed version. Returns the version now installed.
// Throws std::runtime_error when the database holds a newer registry than this build
// understands.
int migrate_registry(ControlConnection& connection);

// migrate_registry() in its own transaction under the registry lock, for a registry a proxy finds
// older than it needs (the materialization engine before it waits for acknowledgements).
void upgrade_registry(ControlConnection& connection);

}  // namespace seedproxy::seeds
