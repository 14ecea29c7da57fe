// The acknowledgement wait: the heartbeat table read again whenever a proxy announces a version or
// a lease may have run out, LISTEN on the acknowledgement channel in between.
#include "seeds/materialize/acknowledgements.hpp"

#include <poll.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "common/log.hpp"
#include "seeds/registry/registry_schema.hpp"

namespace seedproxy::seeds {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto stop_slice = std::chrono::milliseconds(250);

// Drains what arrived on the connection; true when a proxy acknowledged something.
bool acknowledged(PGconn* native) {
  if (PQconsumeInput(native) == 0) throw std::runtime_error(PQerrorMessage(native));
  bool any = false;
  while (PGnotify* notify = PQnotifies(native)) {
    if (std::strcmp(notify->relname, acknowledgement_channel) == 0) any = true;
    PQfreemem(notify);
  }
  return any;
}

// Sleeps until an acknowledgement arrives, `deadline` passes or `stopped()`; false when stopped.
bool sleep_for_acknowledgement(PGconn* native, Clock::time_point deadline,
                               const std::function<bool()>& stopped) {
  while (Clock::now() < deadline) {
    if (stopped()) return false;
    if (acknowledged(native)) return true;
    const auto slice = std::min<Clock::duration>(stop_slice, deadline - Clock::now());
    pollfd fd{PQsocket(native), POLLIN, 0};
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(slice).count();
    (void)::poll(&fd, 1, static_cast<int>(std::max<std::int64_t>(ms, 0)));
  }
  return !stopped();
}

}  // namespace

AcknowledgementWait laggards(const std::vector<FleetMember>& fleet, std::uint64_t version) {
  AcknowledgementWait out;
  std::string names;
  for (const auto& member : fleet) {
    if (!member.live()) continue;
    ++out.live;
    if (member.served_version >= version) continue;
    ++out.waiting;
    names += (names.empty() ? "" : ", ") + member.instance;
    if (!member.address.empty() && member.address != member.instance)
      names += " (" + member.address + ")";
    names +=
        ", last seen " + log::seconds_text(std::max(0.0, member.seconds_since_heartbeat)) + " ago";
  }
  if (out.waiting > 0)
    out.text = "waiting for " + std::to_string(out.waiting) + " of " + std::to_string(out.live) +
               (out.live == 1 ? " proxy: " : " proxies: ") + names;
  return out;
}

bool wait_for_acknowledgements(ControlConnection& connection, std::uint64_t version,
                               const std::function<bool()>& stopped,
                               const std::function<void(const AcknowledgementWait&)>& report) {
  const std::string channel = std::string("\"") + acknowledgement_channel + "\"";
  (void)connection.query("listening for acknowledgements", "LISTEN " + channel);
  struct Unlisten {
    ControlConnection& connection;
    const std::string& channel;
    const std::function<void(const AcknowledgementWait&)>& report;
    ~Unlisten() {
      report({});
      try {
        if (connection.healthy())
          (void)connection.query("no longer listening for acknowledgements", "UNLISTEN " + channel);
      } catch (const std::exception&) {  // the connection's next user finds out
      }
    }
  } unlisten{connection, channel, report};
  std::string reported;
  for (;;) {
    if (stopped()) return false;
    const auto fleet = read_fleet(connection);
    const auto wait = laggards(fleet, version);
    if (wait.waiting == 0) return true;
    if (wait.text != reported) report(wait);
    reported = wait.text;
    // The nearest lease of a proxy waited for: it is not waited for once that runs out.
    double nearest = 60.0;
    for (const auto& member : fleet)
      if (member.live() && member.served_version < version)
        nearest = std::min(nearest, member.lease_seconds_left);
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(nearest + 0.01));
    // Re-read at least every second, so "last seen" stays current for operators.
    if (!sleep_for_acknowledgement(connection.native(),
                                   std::min(deadline, Clock::now() + std::chrono::seconds(1)),
                                   stopped))
      return false;
  }
}

}  // namespace seedproxy::seeds
