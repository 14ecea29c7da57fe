// Feeds the clients' transaction times to the materialization engine's latency guard, whatever
// else observes the sessions: it passes every event on to `next` (the metrics, or nothing) and
// also records each finished transaction (idle to idle) in `latency`.
#pragma once

#include "proxy/observe/observer.hpp"
#include "seeds/materialize/application_latency.hpp"

namespace seedproxy::proxy {

class LatencyObserver final : public Observer {
 public:
  LatencyObserver(seeds::ApplicationLatency& latency, Observer& next) noexcept
      : latency_(latency), next_(&next) {}

  void client_accepted() noexcept override { next_->client_accepted(); }
  void client_refused() noexcept override { next_->client_refused(); }
  void client_closed() noexcept override { next_->client_closed(); }
  void upstream_connected(Duration elapsed) noexcept override {
    next_->upstream_connected(elapsed);
  }
  void upstream_error(UpstreamStage stage) noexcept override { next_->upstream_error(stage); }
  void statement_started(StatementKind kind) noexcept override { next_->statement_started(kind); }
  void statement_finished(StatementKind kind, Duration elapsed) noexcept override {
    next_->statement_finished(kind, elapsed);
  }
  void transaction_finished(Duration elapsed) noexcept override {
    latency_.record(std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed));
    next_->transaction_finished(elapsed);
  }
  void statement_rewritten(Duration elapsed, bool cache_hit) noexcept override {
    next_->statement_rewritten(elapsed, cache_hit);
  }
  void attribute_read(std::string_view database, std::string_view entity,
                      std::string_view attribute) noexcept override {
    next_->attribute_read(database, entity, attribute);
  }
  void protocol_error(Peer culprit) noexcept override { next_->protocol_error(culprit); }
  void tls_handshake(Peer leg, TlsOutcome outcome) noexcept override {
    next_->tls_handshake(leg, outcome);
  }
  void server_parked() noexcept override { next_->server_parked(); }
  void server_reused() noexcept override { next_->server_reused(); }
  void server_let_go() noexcept override { next_->server_let_go(); }

 private:
  seeds::ApplicationLatency& latency_;
  Observer* next_;
};

}  // namespace seedproxy::proxy
