// The end watch of one I/O thread: every quarter second each of its sessions looks, once per
// trusted read, for a peer that closed right after ending its turn. Such an end raises no
// readiness event of its own (drained_read.hpp), so without the watch a client that half-closes
// after its Query would wait for the proxy's close forever.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>

#include "proxy/session/session.hpp"

namespace seedproxy::proxy {

inline constexpr std::chrono::milliseconds end_watch_interval{250};

// Runs until its executor's context stops; spawn it on the thread that owns `list`.
boost::asio::awaitable<void> watch_session_ends(SessionList& list);

}  // namespace seedproxy::proxy
