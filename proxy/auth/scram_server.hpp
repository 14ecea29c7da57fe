// The server side of SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), as PostgreSQL's
// auth-scram.c speaks it: the proxy authenticates a client against a stored secret and, once the
// proof verifies, holds the client's ClientKey to log in upstream with.
//
// Usage, per connection: mechanisms() for AuthenticationSASL; start() with the
// SASLInitialResponse; next() with each SASLResponse. Each step answers SASLContinue data,
// SASLFinal data (success) or an AuthError (failure). Messages are bounded, checked byte by byte
// and refused with PostgreSQL's wording; nothing in them can crash the exchange.
//
// PostgreSQL's behaviour kept on purpose:
//   - the username inside the SCRAM message is ignored (the startup packet's user counts);
//   - authzid and mandatory extensions ("m=") are refused; optional extensions are skipped;
//   - gs2 flag `n` is always accepted with SCRAM-SHA-256, `y` is refused when PLUS is offered
//     (the client was made to believe the server cannot bind: a downgrade), `p` only with PLUS;
//   - an unknown user, or one without a SCRAM secret, gets a mock salt and fails at the proof
//     with the same message and the same work as a wrong password.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/auth/sasl_step.hpp"
#include "proxy/auth/scram_attributes.hpp"
#include "proxy/auth/scram_keys.hpp"
#include "proxy/auth/scram_secret.hpp"

namespace seedproxy::auth {

struct ScramServerOptions {
  // The tls-server-end-point hash of the certificate the proxy presented on this connection
  // (tls_server_end_point_hash). Non-empty: SCRAM-SHA-256-PLUS is offered and a client's `y`
  // is refused. Empty: the client leg is plain TCP, or the certificate cannot be bound to
  // (e.g. Ed25519), in which case PLUS is not offered and `y` is accepted.
  std::vector<std::byte> channel_binding_hash;
  // Empty: 18 bytes from the CSPRNG, base64. Set only by tests (RFC 7677's vector).
  std::string server_nonce;
};

class ScramServer {
 public:
  // A user whose SCRAM secret the proxy holds (auth.query's rolpassword, or auth.file).
  ScramServer(std::string user, ScramSecret secret, ScramServerOptions options);

  // A user who does not exist or has no usable SCRAM secret: the exchange runs against
  // mock_scram_secret(user, mock_nonce, mock_iterations) and fails at the proof exactly like a
  // wrong password. `log_reason` (e.g. `Role "x" does not exist.`) reaches only the log_detail.
  [[nodiscard]] static ScramServer doomed(std::string user, const SecretKey& mock_nonce,
                                          std::string log_reason, ScramServerOptions options,
                                          std::uint32_t mock_iterations = default_scram_iterations);

  // The mechanisms to list in AuthenticationSASL, best first.
  [[nodiscard]] std::vector<std::string_view> mechanisms() const;

  // SASLInitialResponse: the chosen mechanism and its data (nullopt when the client sent none;
  // the answer is then an empty SASLContinue and the client-first-message comes in next()).
  [[nodiscard]] SaslStep start(std::string_view mechanism, std::optional<std::string_view> data);
  // Each SASLResponse.
  [[nodiscard]] SaslStep next(std::string_view data);

  [[nodiscard]] bool authenticated() const noexcept { return state_ == State::authenticated; }
  // After success: the recovered ClientKey, the secret's ServerKey, salt and iteration count.
  [[nodiscard]] std::optional<ScramKeys> upstream_keys() const;

 private:
  enum class State : std::uint8_t {
    initial,
    awaiting_client_first,
    awaiting_client_final,
    authenticated,
    failed
  };

  SaslStep on_client_first(std::string_view message);
  SaslStep on_client_final(std::string_view message);
  // Reads the gs2 header up to client-first-message-bare; nullopt when it is acceptable.
  std::optional<AuthError> read_gs2_header(AttributeReader& reader);
  std::optional<AuthError> check_channel_binding(std::string_view value) const;
  SaslStep verify_proof(const SecretKey& proof, std::string_view client_final_without_proof);
  SaslStep fail(AuthError error);
  [[nodiscard]] bool plus_offered() const noexcept {
    return !options_.channel_binding_hash.empty();
  }

  std::string user_;
  ScramSecret secret_;
  ScramServerOptions options_;
  bool doomed_ = false;
  std::string doomed_reason_;
  State state_ = State::initial;
  bool binding_ = false;  // SCRAM-SHA-256-PLUS was selected
  char cbind_flag_ = 0;
  std::string client_first_bare_;
  std::string server_first_;
  std::string nonce_;  // client nonce followed by the server's
  std::optional<SecretKey> client_key_;
};

}  // namespace seedproxy::auth
