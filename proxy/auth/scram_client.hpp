// The client side of SCRAM-SHA-256(-PLUS), as libpq speaks it, for the proxy's login to the
// upstream server with a credential it holds: either the ClientKey recovered from a client's
// verified proof (ScramKeys), or a plain-text password from auth.file.
//
// What the exchange proves about the server:
//   - with a ServerKey (from the stored secret; always there when the secret came from
//     auth.query or auth.file), the server's signature is checked: the server knows the secret,
//     so it is the real one (or someone holding its pg_authid row);
//   - with only a ClientKey (ScramKeys without server_key), nothing is proven about the server:
//     a server that accepts the proof only shows it holds the StoredKey, and anyone in the
//     middle could simply answer AuthenticationOk. finished() is still true, server_verified()
//     is false; the session must then rely on verify-full TLS to know whom it talks to. The
//     client's key itself is never exposed: the proof is ClientKey XOR HMAC(StoredKey, ...), and
//     the nonce changes with every exchange.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "proxy/auth/sasl_step.hpp"
#include "proxy/auth/scram_keys.hpp"
#include "proxy/auth/secret_bytes.hpp"

namespace seedproxy::auth {

// libpq's channel_binding setting.
enum class ChannelBindingPolicy : std::uint8_t { disable, prefer, require };

// PBKDF2 with a plain-text password costs the proxy ~0.4 µs per iteration; an upstream asking for
// more than this is refused rather than allowed to stall the thread for seconds.
inline constexpr std::uint32_t max_derivation_iterations = 1u << 20;

struct ScramClientOptions {
  ChannelBindingPolicy channel_binding = ChannelBindingPolicy::prefer;
  bool tls = false;  // the upstream leg runs TLS
  // tls_server_end_point_hash of the upstream's certificate (DER from the TLS handshake); empty
  // when there is no TLS or the certificate cannot be bound to.
  std::vector<std::byte> server_end_point_hash;
  // The SCRAM username attribute. PostgreSQL ignores it (the startup packet's user counts) and
  // libpq sends it empty; tests set it to replay RFC 7677's exchange.
  std::string username;
  // Empty: 18 bytes from the CSPRNG, base64. Set only by tests.
  std::string client_nonce;
};

// What the proxy logs in upstream with.
class ScramCredential {
 public:
  // The salt and iteration count must be the ones the upstream announces: the ClientKey belongs
  // to them. They are when the secret was read from that server (auth.query).
  [[nodiscard]] static ScramCredential from_keys(ScramKeys keys);
  // Keys are derived at login from the salt and iteration count the upstream announces.
  [[nodiscard]] static ScramCredential from_password(SecretBytes password);

 private:
  friend class ScramClient;
  explicit ScramCredential(std::variant<ScramKeys, SecretBytes> value) : value_(std::move(value)) {}
  std::variant<ScramKeys, SecretBytes> value_;
};

class ScramClient {
 public:
  ScramClient(ScramCredential credential, ScramClientOptions options);

  [[nodiscard]] const std::string& mechanism() const noexcept { return mechanism_; }

  // AuthenticationSASL's mechanism list → mechanism() chosen as libpq chooses, and the
  // client-first-message for SASLInitialResponse.
  [[nodiscard]] SaslStep start(std::span<const std::string> server_mechanisms);
  // AuthenticationSASLContinue's data (server-first-message) → client-final-message.
  [[nodiscard]] SaslStep on_server_first(std::string_view message);
  // AuthenticationSASLFinal's data (server-final-message) → success, with nothing to send.
  [[nodiscard]] SaslStep on_server_final(std::string_view message);

  // True once the exchange completed; only then may AuthenticationOk be accepted (a server that
  // sends AuthenticationOk earlier skipped the proof of its identity).
  [[nodiscard]] bool finished() const noexcept { return state_ == State::finished; }
  // True when finished() and the server's signature was checked against a ServerKey.
  [[nodiscard]] bool server_verified() const noexcept {
    return finished() && server_key_.has_value();
  }

 private:
  enum class State : std::uint8_t {
    initial,
    awaiting_server_first,
    awaiting_server_final,
    finished,
    failed
  };

  SaslStep fail(std::string message);
  // Sets client_key_ and server_key_ for the salt and iteration count the server announced.
  std::optional<std::string> derive_keys(const std::vector<std::byte>& salt,
                                         std::uint32_t iterations);
  std::string channel_binding_attribute() const;

  ScramCredential credential_;
  ScramClientOptions options_;
  State state_ = State::initial;
  std::string mechanism_;
  char cbind_flag_ = 'n';
  std::string client_nonce_;
  std::string client_first_bare_;
  std::string auth_message_;
  SecretKey client_key_;
  std::optional<SecretKey> server_key_;
};

}  // namespace seedproxy::auth
