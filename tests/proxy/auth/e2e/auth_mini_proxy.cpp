// A one-connection proxy built on the auth core, to prove it against real libpq and PostgreSQL:
// it authenticates the client itself (SCRAM-SHA-256(-PLUS) or md5, secrets from a userlist file
// holding the server's own rolpassword values), logs in upstream with the recovered ClientKey or
// stored md5 hash (never a password), then relays messages until the client leaves.
//
//   auth_mini_proxy --userlist FILE --upstream-port N [--upstream-tls]
//                   [--upstream-channel-binding disable|prefer|require]
//                   [--cert FILE --key FILE]     (offer TLS to the client)
//
// Prints "port=N" once listening, then one line per stage ("client: ...", "upstream: ...") and a
// last line "result: ok" or "result: refused SQLSTATE message". Driven by test_auth_core.py.
#include <openssl/ssl.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "proxy/auth/channel_binding.hpp"
#include "proxy/auth/crypto.hpp"
#include "proxy/auth/md5_auth.hpp"
#include "proxy/auth/sasl_messages.hpp"
#include "proxy/auth/scram_client.hpp"
#include "proxy/auth/scram_server.hpp"
#include "proxy/auth/stored_secret.hpp"
#include "proxy/auth/userlist.hpp"
#include "tests/proxy/auth/e2e/blocking_stream.hpp"

using namespace seedproxy::auth;
using namespace seedproxy::test;

namespace {

constexpr std::uint32_t ssl_request_code = 80877103;
constexpr std::uint32_t gssenc_request_code = 80877104;

struct Options {
  std::string userlist;
  std::uint16_t upstream_port = 0;
  bool upstream_tls = false;
  ChannelBindingPolicy upstream_binding = ChannelBindingPolicy::prefer;
  std::string cert_file, key_file;
};

struct Startup {
  std::string user, database;
};

// What the proxy holds, after the client proved itself, to log in upstream.
struct UpstreamCredential {
  std::optional<ScramCredential> scram;
  std::optional<Md5Secret> md5;
};

struct SslContextFree {
  void operator()(SSL_CTX* context) const noexcept { SSL_CTX_free(context); }
};
using SslContext = std::unique_ptr<SSL_CTX, SslContextFree>;

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "auth_mini_proxy: " << why << "\n";
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--userlist")
      options.userlist = value();
    else if (flag == "--upstream-port")
      options.upstream_port = static_cast<std::uint16_t>(std::stoi(value()));
    else if (flag == "--upstream-tls")
      options.upstream_tls = true;
    else if (flag == "--cert")
      options.cert_file = value();
    else if (flag == "--key")
      options.key_file = value();
    else if (flag == "--upstream-channel-binding") {
      const auto policy = value();
      options.upstream_binding = policy == "disable"   ? ChannelBindingPolicy::disable
                                 : policy == "require" ? ChannelBindingPolicy::require
                                                       : ChannelBindingPolicy::prefer;
    } else
      usage("unknown option " + flag);
  }
  if (options.userlist.empty() || options.upstream_port == 0)
    usage("--userlist and --upstream-port are required");
  return options;
}

Userlist load_userlist(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) usage("cannot open " + path);
  std::string text(max_userlist_size, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), file));
  std::fclose(file);
  auto parsed = parse_userlist(text);
  cleanse(text);
  if (!parsed.ok()) usage(describe(parsed.errors.front(), path));
  return std::move(parsed.users);
}

void send_fatal(BlockingStream& client, std::string_view code, std::string_view message,
                std::string_view detail = {}) {
  ByteVector body;
  for (const auto& [field, value] : {std::pair<char, std::string_view>{'S', "FATAL"},
                                     {'V', "FATAL"},
                                     {'C', code},
                                     {'M', message},
                                     {'D', detail}}) {
    if (value.empty()) continue;
    body.push_back(static_cast<std::byte>(field));
    put_cstring(body, value);
  }
  body.push_back(std::byte{0});
  (void)client.write_message('E', body);
  std::cout << "result: refused " << code << " " << message << std::endl;
}

void refuse(BlockingStream& client, const AuthError& error) {
  if (!error.log_detail.empty()) std::cout << "log: " << error.log_detail << std::endl;
  send_fatal(client, sqlstate(error.code), error.message, error.detail);
}

// SSLRequest / GSSENCRequest, then the StartupMessage.
std::optional<Startup> negotiate(BlockingStream& client, SSL_CTX* tls) {
  for (int round = 0; round < 3; ++round) {
    const auto packet = client.read_startup_packet();
    if (!packet) return std::nullopt;
    const auto code = get_u32(*packet, 4);
    if (code == ssl_request_code || code == gssenc_request_code) {
      const bool accept = code == ssl_request_code && tls != nullptr && !client.tls();
      if (!client.write_all(bytes_of(accept ? "S" : "N"))) return std::nullopt;
      std::string error;
      if (accept && !client.tls_accept(tls, error))
        return std::cout << error << std::endl, std::nullopt;
      continue;
    }
    Startup startup;
    const std::string body = text_of(std::span(*packet).subspan(8));
    for (std::size_t at = 0; at < body.size() && body[at] != '\0';) {
      const std::string key = body.c_str() + at;
      at += key.size() + 1;
      const std::string value = at < body.size() ? body.c_str() + at : "";
      at += value.size() + 1;
      if (key == "user") startup.user = value;
      if (key == "database") startup.database = value;
    }
    if (startup.database.empty()) startup.database = startup.user;
    return startup;
  }
  return std::nullopt;
}

// Reads the body of the client's next 'p' message.
std::optional<ByteVector> read_password_message(BlockingStream& client) {
  auto message = client.read_message();
  if (!message || message->type != 'p') return std::nullopt;
  return std::move(message->body);
}

std::optional<UpstreamCredential> authenticate_scram(BlockingStream& client, ScramServer server) {
  const auto mechanisms = server.mechanisms();
  if (!client.write_message('R', auth_sasl_body(mechanisms))) return std::nullopt;
  std::string error;
  auto body = read_password_message(client);
  const auto initial = body ? parse_sasl_initial_response(*body, error) : std::nullopt;
  if (!initial) return send_fatal(client, "08P01", error), std::nullopt;
  std::cout << "client: mechanism=" << initial->mechanism << std::endl;
  auto step = server.start(initial->mechanism, initial->data);
  while (step.outcome == SaslOutcome::continue_exchange) {
    if (!client.write_message('R', auth_sasl_continue_body(step.message))) return std::nullopt;
    body = read_password_message(client);
    const auto response = body ? parse_sasl_response(*body, error) : std::nullopt;
    if (!response) return send_fatal(client, "08P01", error), std::nullopt;
    step = server.next(*response);
  }
  if (step.outcome == SaslOutcome::failure) return refuse(client, step.error), std::nullopt;
  if (!client.write_message('R', auth_sasl_final_body(step.message))) return std::nullopt;
  UpstreamCredential credential;
  credential.scram = ScramCredential::from_keys(*server.upstream_keys());
  return credential;
}

std::optional<UpstreamCredential> authenticate_md5(BlockingStream& client, const Startup& startup,
                                                   const Md5Secret& secret) {
  Md5Salt salt{};
  if (!random_md5_salt(salt) || !client.write_message('R', auth_md5_body(salt)))
    return std::nullopt;
  std::string error;
  const auto body = read_password_message(client);
  const auto answer = body ? parse_password_message(*body, error) : std::nullopt;
  std::cout << "client: mechanism=md5" << std::endl;
  if (!answer || !verify_md5_response(secret, salt, *answer))
    return refuse(client, password_failed(startup.user, "md5 answer does not match")), std::nullopt;
  UpstreamCredential credential;
  credential.md5 = secret;
  return credential;
}

// Authenticates the client against the userlist the way the proxy will in auth.mode = "proxy".
std::optional<UpstreamCredential> authenticate(BlockingStream& client, const Startup& startup,
                                               const Userlist& users, const SecretKey& mock_nonce) {
  ScramServerOptions options;
  if (client.tls()) {
    std::string error;
    auto hash = tls_server_end_point_hash(client.own_certificate_der(), error);
    if (hash) options.channel_binding_hash = std::move(*hash);
    std::cout << "client: tls=" << client.tls_description()
              << " end-point-hash-bytes=" << options.channel_binding_hash.size() << std::endl;
  }
  const auto* entry = users.find(startup.user);
  if (entry != nullptr && entry->secret.kind() == SecretKind::md5)
    return authenticate_md5(client, startup, *entry->secret.md5());
  if (entry != nullptr && entry->secret.kind() == SecretKind::scram_sha_256)
    return authenticate_scram(client, ScramServer(startup.user, *entry->secret.scram(), options));
  const std::string reason = entry == nullptr ? "Role \"" + startup.user + "\" does not exist."
                                              : "User has no SCRAM secret.";
  return authenticate_scram(client, ScramServer::doomed(startup.user, mock_nonce, reason, options));
}

std::unique_ptr<BlockingStream> connect_upstream(const Options& options, const Startup& startup,
                                                 SSL_CTX* tls) {
  const int fd = connect_to("127.0.0.1", options.upstream_port);
  if (fd < 0) return nullptr;
  auto upstream = std::make_unique<BlockingStream>(fd);
  if (options.upstream_tls) {
    ByteVector request;
    put_u32(request, 8);
    put_u32(request, ssl_request_code);
    std::byte answer{};
    std::string error;
    if (!upstream->write_all(request) || !upstream->read_exact(std::span(&answer, 1)) ||
        answer != std::byte{'S'} || !upstream->tls_connect(tls, error))
      return std::cout << "upstream: TLS refused " << error << std::endl, nullptr;
  }
  ByteVector body;
  put_u32(body, 3u << 16);
  put_cstring(body, "user");
  put_cstring(body, startup.user);
  put_cstring(body, "database");
  put_cstring(body, startup.database);
  body.push_back(std::byte{0});
  ByteVector packet;
  put_u32(packet, static_cast<std::uint32_t>(body.size() + 4));
  packet.insert(packet.end(), body.begin(), body.end());
  return upstream->write_all(packet) ? std::move(upstream) : nullptr;
}

// One SCRAM step towards the upstream: sends what the client state machine answers.
bool scram_step(BlockingStream& upstream, BlockingStream& client, const SaslStep& step,
                bool initial, const std::string& mechanism) {
  if (step.outcome == SaslOutcome::failure) {
    send_fatal(client, sqlstate(step.error.code),
               "could not log in upstream: " + step.error.message);
    return false;
  }
  if (step.outcome == SaslOutcome::success) return true;
  // SASLInitialResponse carries the mechanism; a SASLResponse is the SCRAM message itself.
  if (initial)
    return upstream.write_message('p', sasl_initial_response_body(mechanism, step.message));
  return upstream.write_message('p', bytes_of(step.message));
}

// Runs the upstream's authentication request by request; true once AuthenticationOk arrived
// after a completed exchange. On failure the client has been told why.
bool login_upstream(BlockingStream& upstream, BlockingStream& client,
                    UpstreamCredential& credential, const Options& options) {
  std::optional<ScramClient> scram;
  for (;;) {
    const auto message = upstream.read_message();
    if (!message) return send_fatal(client, "08006", "upstream closed the connection"), false;
    if (message->type == 'E') {
      (void)client.write_message('E', message->body);
      return std::cout << "result: refused by upstream" << std::endl, false;
    }
    std::string error;
    const auto request =
        message->type == 'R' ? parse_auth_request(message->body, error) : std::nullopt;
    if (!request)
      return send_fatal(client, "08P01", "unexpected upstream message: " + error), false;
    switch (request->code) {
      case AuthRequestCode::ok:
        if (scram && !scram->finished())
          return send_fatal(client, "08001", "upstream skipped the end of the SCRAM exchange"),
                 false;
        return true;
      case AuthRequestCode::md5_password:
        if (!credential.md5)
          return send_fatal(client, "08001", "upstream asks md5; no md5 secret"), false;
        if (!upstream.write_message(
                'p', password_message_body(md5_response(*credential.md5, request->salt).text())))
          return false;
        std::cout << "upstream: mechanism=md5" << std::endl;
        break;
      case AuthRequestCode::sasl: {
        if (!credential.scram)
          return send_fatal(client, "08001", "upstream asks SCRAM; no SCRAM key"), false;
        ScramClientOptions scram_options;
        scram_options.tls = upstream.tls();
        scram_options.channel_binding = options.upstream_binding;
        if (upstream.tls()) {
          auto hash = tls_server_end_point_hash(upstream.peer_certificate_der(), error);
          if (hash) scram_options.server_end_point_hash = std::move(*hash);
        }
        scram.emplace(std::move(*credential.scram), scram_options);
        const auto step = scram->start(request->mechanisms);
        if (!scram_step(upstream, client, step, true, scram->mechanism())) return false;
        break;
      }
      case AuthRequestCode::sasl_continue:
        if (!scram ||
            !scram_step(upstream, client, scram->on_server_first(request->data), false, {}))
          return false;
        break;
      case AuthRequestCode::sasl_final:
        if (!scram ||
            !scram_step(upstream, client, scram->on_server_final(request->data), false, {}))
          return false;
        std::cout << "upstream: tls=" << upstream.tls_description()
                  << " mechanism=" << scram->mechanism()
                  << " server_verified=" << scram->server_verified() << std::endl;
        break;
      case AuthRequestCode::cleartext_password:
        return send_fatal(client, "08001", "upstream asks for a plain-text password"), false;
    }
  }
}

bool forward_until_ready(BlockingStream& from, BlockingStream& to) {
  for (;;) {
    const auto message = from.read_message();
    if (!message || !to.write_message(message->type, message->body)) return false;
    if (message->type == 'Z') return true;
  }
}

// Message by message: a client batch up to Sync or Query, then the server's answers up to
// ReadyForQuery. Enough for psycopg's queries in the test.
void relay(BlockingStream& client, BlockingStream& upstream) {
  if (!client.write_message('R', auth_ok_body()) || !forward_until_ready(upstream, client)) return;
  for (;;) {
    const auto message = client.read_message();
    if (!message || !upstream.write_message(message->type, message->body) || message->type == 'X')
      return;
    if ((message->type == 'S' || message->type == 'Q') && !forward_until_ready(upstream, client))
      return;
  }
}

SslContext tls_contexts(const Options& options, SslContext& client_side) {
  // Upstream certificates are not verified here: the test is about authentication, and the
  // server's SCRAM signature (checked with the ServerKey) proves whom we talk to.
  client_side.reset(SSL_CTX_new(TLS_client_method()));
  if (options.cert_file.empty()) return nullptr;
  SslContext server_side(SSL_CTX_new(TLS_server_method()));
  if (!server_side ||
      SSL_CTX_use_certificate_file(server_side.get(), options.cert_file.c_str(),
                                   SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(server_side.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) !=
          1)
    usage("cannot load " + options.cert_file + " / " + options.key_file);
  return server_side;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_options(argc, argv);
  const auto users = load_userlist(options.userlist);
  SecretKey mock_nonce;  // a real proxy keeps this stable and shared; see the lead's notes
  if (!fill_random(mock_nonce.data())) usage("no randomness");
  SslContext client_tls;
  const auto server_tls = tls_contexts(options, client_tls);

  std::uint16_t port = 0;
  const int listener = listen_on_loopback(port);
  if (listener < 0) usage("cannot listen");
  std::cout << "port=" << port << std::endl;
  BlockingStream client(accept_one(listener));
  const auto startup = negotiate(client, server_tls.get());
  if (!startup) return std::cout << "result: no startup" << std::endl, 1;
  auto credential = authenticate(client, *startup, users, mock_nonce);
  if (!credential) return 1;
  const auto upstream = connect_upstream(options, *startup, client_tls.get());
  if (!upstream) return send_fatal(client, "08001", "could not connect upstream"), 1;
  if (!login_upstream(*upstream, client, *credential, options)) return 1;
  std::cout << "result: ok" << std::endl;
  relay(client, *upstream);
  return 0;
}
