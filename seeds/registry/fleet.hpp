// The proxies that share a registry: each one's heartbeat row (seedproxy.proxies) with its lease
// and the registry version its sessions are served from, and the registry's change counter
// (seedproxy.registry_state) that a phase change raises. SQL only; who calls it when is the
// registry watcher's (heartbeats) and the materialization engine's (acknowledgements) business.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "seeds/control/control_connection.hpp"

namespace seedproxy::seeds {

// The registry's version now: raised by every statement that changes seedproxy.seeds. Needs a
// registry at fleet_schema_version or later.
[[nodiscard]] std::uint64_t read_registry_change(ControlConnection& connection);

// One heartbeat: `instance`'s row says it serves `served` and is live for `lease_seconds` from
// the server's now(), committed when this returns. `announce`: the served version is new, so an
// engine waiting for acknowledgements is woken (NOTIFY on acknowledgement_channel).
void renew_lease(ControlConnection& connection, const std::string& instance,
                 const std::string& address, std::uint64_t served, double lease_seconds,
                 bool announce);

// `instance` stops following the database: its row goes, nobody waits for it any more.
void leave_fleet(ControlConnection& connection, const std::string& instance);

// One proxy as an engine sees it.
struct FleetMember {
  std::string instance, address;
  std::uint64_t served_version = 0;
  double seconds_since_heartbeat = 0;
  double lease_seconds_left = 0;  // negative once the lease ran out
  [[nodiscard]] bool live() const noexcept { return lease_seconds_left > 0; }
};

// Every heartbeat row, by instance; rows whose lease ran out more than a day ago are deleted
// first (proxies that went for good).
[[nodiscard]] std::vector<FleetMember> read_fleet(ControlConnection& connection);

}  // namespace seedproxy::seeds
