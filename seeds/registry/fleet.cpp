// Heartbeat rows and the registry's change counter, as parameterised statements.
#include "seeds/registry/fleet.hpp"

#include <string>

#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {

std::uint64_t read_registry_change(ControlConnection& connection) {
  auto result = connection.query("reading the seed registry's change version",
                                 R"sql(SELECT "version" FROM "seedproxy"."registry_state")sql");
  return PQntuples(result.get()) == 1 ? count_at(result, 0, 0) : 0;
}

void renew_lease(ControlConnection& connection, const std::string& instance,
                 const std::string& address, std::uint64_t served, double lease_seconds,
                 bool announce) {
  (void)connection.query("renewing this proxy's lease in the seed registry", R"sql(
WITH beat AS (
  INSERT INTO "seedproxy"."proxies" AS p
    ("instance", "address", "served_version", "heartbeat_at", "lease_until")
  VALUES ($1, $2, $3::bigint, now(), now() + make_interval(secs => $4::double precision))
  ON CONFLICT ("instance") DO UPDATE SET
    "address" = EXCLUDED."address", "served_version" = EXCLUDED."served_version",
    "heartbeat_at" = EXCLUDED."heartbeat_at", "lease_until" = EXCLUDED."lease_until"
  RETURNING 1)
SELECT CASE WHEN $5::boolean THEN pg_notify($6, $1) END FROM beat)sql",
                         {instance, address, std::to_string(served), std::to_string(lease_seconds),
                          announce ? "true" : "false", acknowledgement_channel});
}

void leave_fleet(ControlConnection& connection, const std::string& instance) {
  (void)connection.query("leaving the seed registry's heartbeat table",
                         R"sql(DELETE FROM "seedproxy"."proxies" WHERE "instance" = $1)sql",
                         {instance});
}

std::vector<FleetMember> read_fleet(ControlConnection& connection) {
  (void)connection.query(
      "forgetting proxies gone for a day",
      R"sql(DELETE FROM "seedproxy"."proxies" WHERE "lease_until" < now() - interval '1 day')sql");
  auto rows = connection.query("reading the proxies' heartbeats", R"sql(
SELECT "instance", "address", "served_version",
       extract(epoch FROM now() - "heartbeat_at")::double precision,
       extract(epoch FROM "lease_until" - now())::double precision
FROM "seedproxy"."proxies" ORDER BY "instance")sql");
  std::vector<FleetMember> out;
  for (int row = 0; row < PQntuples(rows.get()); ++row)
    out.push_back({text_at(rows, row, 0), text_at(rows, row, 1), count_at(rows, row, 2),
                   std::stod(text_at(rows, row, 3)), std::stod(text_at(rows, row, 4))});
  return out;
}

}  // namespace seedproxy::seeds
