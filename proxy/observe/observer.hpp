// The narrow interface through which sessions and the server report events for metrics; the hot
// path sees only this header, never Prometheus.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

namespace seedproxy::proxy {

// What a client asked for when it started a round trip that ends with ReadyForQuery.
enum class StatementKind : std::uint8_t {
  simple_query,   // 'Q'
  extended_sync,  // 'S': the end of an extended-protocol batch (Parse/Bind/Execute...)
  function_call,  // 'F'
};
inline constexpr std::size_t statement_kind_count = 3;

// Which side broke the protocol.
enum class Peer : std::uint8_t { client, server };
inline constexpr std::size_t peer_count = 2;

// Where an upstream failure happened.
enum class UpstreamStage : std::uint8_t {
  connect,  // resolving/connecting to PostgreSQL failed or timed out
  relay,    // the upstream connection broke while a session was using it
  standby,  // a read-write session's backend did not take writes (in_hot_standby=on, 57P03)
};
inline constexpr std::size_t upstream_stage_count = 3;

// How a TLS handshake ended, on either leg (Peer::client: a client's handshake with the proxy;
// Peer::server: the proxy's with PostgreSQL).
enum class TlsOutcome : std::uint8_t {
  ok,
  closed,             // the peer went away mid-handshake
  timeout,            // not finished within limits.startup_timeout_seconds
  certificate,        // a certificate (or its name) did not verify
  protocol,           // any other TLS failure: versions, ciphers, garbage
  no_alpn,            // direct TLS without ALPN "postgresql"
  plaintext_refused,  // a plain-text startup where TLS is required
};
inline constexpr std::size_t tls_outcome_count = 7;

[[nodiscard]] std::string_view to_string(StatementKind kind) noexcept;
[[nodiscard]] std::string_view to_string(TlsOutcome outcome) noexcept;
[[nodiscard]] std::string_view to_string(Peer peer) noexcept;
[[nodiscard]] std::string_view to_string(UpstreamStage stage) noexcept;

// Every method may be called from any I/O thread at any rate; implementations must not block or
// allocate on the common path (a relaxed atomic increment is the budget).
class Observer {
 public:
  using Duration = std::chrono::steady_clock::duration;

  virtual ~Observer() = default;

  // A client connection was accepted (it counts as current until client_closed).
  virtual void client_accepted() noexcept = 0;
  // A client connection was refused before a session started (e.g. max_clients).
  virtual void client_refused() noexcept = 0;
  // An accepted client connection ended, for any reason.
  virtual void client_closed() noexcept = 0;

  // The session's upstream TCP connection was established after `elapsed`.
  virtual void upstream_connected(Duration elapsed) noexcept = 0;
  virtual void upstream_error(UpstreamStage stage) noexcept = 0;

  // A client sent a message that starts a round trip ending with ReadyForQuery...
  virtual void statement_started(StatementKind kind) noexcept = 0;
  // ...and its ReadyForQuery reached the proxy `elapsed` after the message did.
  virtual void statement_finished(StatementKind kind, Duration elapsed) noexcept = 0;

  // The rewriter looked at a statement; `cache_hit` when the result came from the rewrite cache.
  virtual void statement_rewritten(Duration elapsed, bool cache_hit) noexcept = 0;

  // A statement read a virtual attribute (counted once per statement and attribute). Called only
  // for rewritten statements, so hashing the three names is acceptable here.
  virtual void attribute_read(std::string_view database, std::string_view entity,
                              std::string_view attribute) noexcept = 0;

  virtual void protocol_error(Peer culprit) noexcept = 0;

  // A TLS handshake (or a refused plain-text client) on `leg`. Not pure: observers that do not
  // follow TLS (test fakes) need not say so.
  virtual void tls_handshake(Peer /*leg*/, TlsOutcome /*outcome*/) noexcept {}

  // The session went back to idle (ReadyForQuery 'I') `elapsed` after the client's first round
  // trip out of idle: a whole transaction, or one autocommit statement, as the client waited for
  // it (its own pauses between statements included). Not pure, like tls_handshake.
  virtual void transaction_finished(Duration /*elapsed*/) noexcept {}

  // server_pool: a backend was parked for the next client, handed to one, or let go while
  // parked (idle timeout, PostgreSQL ended it, KILL, shutdown). Not pure, like tls_handshake.
  virtual void server_parked() noexcept {}
  virtual void server_reused() noexcept {}
  virtual void server_let_go() noexcept {}
};

// Does nothing: for `metrics` absent from the configuration, tests and benchmarks.
class NullObserver final : public Observer {
 public:
  void client_accepted() noexcept override {}
  void client_refused() noexcept override {}
  void client_closed() noexcept override {}
  void upstream_connected(Duration) noexcept override {}
  void upstream_error(UpstreamStage) noexcept override {}
  void statement_started(StatementKind) noexcept override {}
  void statement_finished(StatementKind, Duration) noexcept override {}
  void statement_rewritten(Duration, bool) noexcept override {}
  void attribute_read(std::string_view, std::string_view, std::string_view) noexcept override {}
  void protocol_error(Peer) noexcept override {}
};

// A process-wide NullObserver, so holders of an Observer& never need a null check.
[[nodiscard]] Observer& null_observer() noexcept;

}  // namespace seedproxy::proxy
