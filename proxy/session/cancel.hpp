// Forwarding a client's CancelRequest to PostgreSQL, which checks the key itself.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <memory>
#include <vector>

namespace seedproxy::proxy {

struct SessionSettings;

// Opens a fresh upstream connection, sends the packet unchanged and closes, in the background.
// Session mode relays the backend's own BackendKeyData, so the key already names the right
// backend, and any proxy in front of the same server can forward it.
void forward_cancel(const boost::asio::any_io_executor& executor, std::vector<std::byte> packet,
                    std::shared_ptr<const SessionSettings> settings);

}  // namespace seedproxy::proxy
