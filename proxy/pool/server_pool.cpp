#include "proxy/pool/server_pool.hpp"

#include <poll.h>

#include <algorithm>

#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {

namespace {

// A parked backend that PostgreSQL ended (pg_terminate_backend, a restart) is noticed within
// this long even while its idle timeout is far away, so its descriptor does not linger.
constexpr std::chrono::seconds liveness_period{10};

ServerPool::Clock::duration seconds(double value) {
  return std::chrono::duration_cast<ServerPool::Clock::duration>(
      std::chrono::duration<double>(value));
}

// Told to end (PostgreSQL then logs no unexpected end of file), and closed.
void terminate(Stream& stream) noexcept {
  boost::system::error_code ignored;
  if (stream.socket().is_open()) (void)stream.write_some(protocol::terminate_message, ignored);
  stream.close();
}

}  // namespace

void ServerPool::let_go(Stream& stream) noexcept {
  terminate(stream);
  observer_.server_let_go();
}

std::string server_pool_key(const std::vector<std::byte>& startup) {
  return std::string(reinterpret_cast<const char*>(startup.data()), startup.size());
}

ServerPool::ServerPool(boost::asio::io_context::executor_type executor, Observer& observer)
    : timer_(executor), observer_(observer), self_(std::make_shared<ServerPool*>(this)) {}

ServerPool::~ServerPool() {
  *self_ = nullptr;
  clear();
}

bool ServerPool::usable(Stream& stream) noexcept {
  auto& socket = stream.socket();
  if (!socket.is_open() || stream.buffered()) return false;
  // Anything readable while parked (an ErrorResponse before PostgreSQL closes, the end of the
  // stream, a notification) means the backend is not the idle one that was parked.
  pollfd watch{socket.native_handle(), POLLIN | POLLRDHUP, 0};
  const int ready = ::poll(&watch, 1, 0);
  return ready == 0;
}

std::optional<ServerPool::Server> ServerPool::take(const std::string& key,
                                                   const config::ServerPool& settings) {
  const auto now = Clock::now();
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->key != key) {
      ++it;
      continue;
    }
    const bool fresh =
        settings.enabled && now - it->server.born < seconds(settings.lifetime_seconds);
    if (!fresh || !usable(it->server.stream)) {
      let_go(it->server.stream);
      it = parked_.erase(it);
      continue;
    }
    Server server = std::move(it->server);
    parked_.erase(it);
    observer_.server_reused();
    return server;
  }
  return std::nullopt;
}

ServerPool::Refusal ServerPool::park(std::string key, Server server,
                                     const config::ServerPool& settings) {
  const auto now = Clock::now();
  Refusal refusal = nullptr;
  if (!settings.enabled)
    refusal = "server_pool is off";
  else if (now - server.born >= seconds(settings.lifetime_seconds))
    refusal = "the backend is older than server_pool.lifetime_seconds";
  else if (parked_.size() >= settings.max_idle)
    refusal = "server_pool.max_idle backends are parked already";
  else if (!usable(server.stream))
    refusal = "the backend sent something after its reset";
  if (refusal) {
    terminate(server.stream);
    return refusal;
  }
  parked_.push_back(
      {std::move(key), std::move(server), now, now + seconds(settings.idle_timeout_seconds)});
  observer_.server_parked();
  arm();
  return nullptr;
}

std::vector<ServerPool::ParkedInfo> ServerPool::describe() const {
  std::vector<ParkedInfo> out;
  const auto now = Clock::now();
  for (const auto& p : parked_)
    out.push_back({p.server.user, p.server.database, p.server.backend_pid,
                   std::chrono::duration<double>(now - p.since).count(), p.server.stream.tls()});
  return out;
}

void ServerPool::drop_database(const std::string& database) noexcept {
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (it->server.database != database) {
      ++it;
      continue;
    }
    let_go(it->server.stream);
    it = parked_.erase(it);
  }
}

void ServerPool::clear() noexcept {
  for (auto& p : parked_) let_go(p.server.stream);
  parked_.clear();
  timer_.cancel();
  armed_for_ = {};
}

void ServerPool::arm() {
  if (parked_.empty()) return;
  auto next = Clock::now() + liveness_period;
  for (const auto& p : parked_) next = std::min(next, p.until);
  if (armed_for_ != Clock::time_point{} && armed_for_ <= next) return;
  armed_for_ = next;
  timer_.expires_at(next);
  timer_.async_wait([self = std::weak_ptr<ServerPool*>(self_)](boost::system::error_code ec) {
    const auto alive = self.lock();
    if (ec || !alive || *alive == nullptr) return;
    (*alive)->sweep();
  });
}

void ServerPool::sweep() {
  armed_for_ = {};
  const auto now = Clock::now();
  for (auto it = parked_.begin(); it != parked_.end();) {
    if (now >= it->until || !usable(it->server.stream)) {
      let_go(it->server.stream);
      it = parked_.erase(it);
    } else {
      ++it;
    }
  }
  arm();
}

}  // namespace seedproxy::proxy
