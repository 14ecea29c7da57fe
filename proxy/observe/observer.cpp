// Names of the observer's event labels, and the shared do-nothing observer.
#include "proxy/observe/observer.hpp"

namespace seedproxy::proxy {

std::string_view to_string(StatementKind kind) noexcept {
  switch (kind) {
    case StatementKind::simple_query:
      return "simple_query";
    case StatementKind::extended_sync:
      return "extended_sync";
    case StatementKind::function_call:
      return "function_call";
  }
  return "unknown";
}

std::string_view to_string(Peer peer) noexcept {
  return peer == Peer::client ? "client" : "server";
}

std::string_view to_string(TlsOutcome outcome) noexcept {
  switch (outcome) {
    case TlsOutcome::ok:
      return "ok";
    case TlsOutcome::closed:
      return "closed";
    case TlsOutcome::timeout:
      return "timeout";
    case TlsOutcome::certificate:
      return "certificate";
    case TlsOutcome::protocol:
      return "protocol";
    case TlsOutcome::no_alpn:
      return "no_alpn";
    case TlsOutcome::plaintext_refused:
      return "plaintext_refused";
  }
  return "protocol";
}

std::string_view to_string(UpstreamStage stage) noexcept {
  switch (stage) {
    case UpstreamStage::connect:
      return "connect";
    case UpstreamStage::relay:
      return "relay";
    case UpstreamStage::standby:
      break;
  }
  return "standby";
}

Observer& null_observer() noexcept {
  static NullObserver instance;
  return instance;
}

}  // namespace seedproxy::proxy
