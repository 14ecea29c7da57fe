// Waiting, after the engine changed a seed's phase, until every live proxy serves the registry
// version that holds the change: the engine adds a column, switches reads and drops a column only
// then. A proxy whose lease runs out is not waited for any longer (its sessions stop serving seeds
// by then). Woken by the proxies' acknowledgement notifications and by the nearest lease running
// out; never a fixed grace time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "seeds/control/control_connection.hpp"
#include "seeds/registry/fleet.hpp"

namespace seedproxy::seeds {

// What the engine waits for, as operators read it.
struct AcknowledgementWait {
  std::size_t waiting = 0;  // live proxies that serve an older version
  std::size_t live = 0;     // live proxies
  std::string text;  // "waiting for 1 of 3 proxies: proxy-b (10.0.0.2:6432), last seen 4 s ago"
};

// The live proxies of `fleet` that serve a version below `version`, said for operators.
[[nodiscard]] AcknowledgementWait laggards(const std::vector<FleetMember>& fleet,
                                           std::uint64_t version);

// Blocks until every live proxy serves `version` or later: true then; false as soon as
// `stopped()` holds (checked at least every 250 ms). `report` hears each new state of the wait,
// and an empty one when it ends. Uses `connection` (LISTEN for the time of the wait).
[[nodiscard]] bool wait_for_acknowledgements(
    ControlConnection& connection, std::uint64_t version, const std::function<bool()>& stopped,
    const std::function<void(const AcknowledgementWait&)>& report);

}  // namespace seedproxy::seeds
