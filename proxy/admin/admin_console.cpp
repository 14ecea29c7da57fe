// Admin console message loop: Query dispatch, the extended protocol refused until Sync,
// Terminate.
#include "proxy/admin/admin_console.hpp"

#include <variant>

#include "common/sqlstate.hpp"
#include "proxy/admin/admin_commands.hpp"
#include "proxy/io/message_reader.hpp"
#include "proxy/wire/messages.hpp"
#include "proxy/wire/result_set.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

// Admin commands are short; nothing legitimate comes near this.
constexpr std::uint32_t max_console_message = 1u << 20;

void append(std::vector<std::byte>& out, const std::vector<std::byte>& bytes) {
  out.insert(out.end(), bytes.begin(), bytes.end());
}

std::vector<std::byte> backend_key_data() {
  // Not a backend: a cancel request with this key reaches no session.
  protocol::PacketWriter writer;
  writer.begin('K');
  writer.put_u32(0);
  writer.put_u32(0);
  writer.finish();
  return writer.take();
}

bool extended_protocol(char type) {
  return type == 'P' || type == 'B' || type == 'D' || type == 'E' || type == 'C';
}

}  // namespace

asio::awaitable<ConsoleEnd> serve_admin_console(Stream& client, AdminBackend& backend) {
  ConsoleEnd end;
  std::vector<std::byte> out = backend_key_data();
  append(out, protocol::ready_for_query('I'));
  bool skipping_to_sync = false;
  for (;;) {
    if (!out.empty()) {
      const auto ec = co_await client.write_all(out);
      if (ec) {
        end.reason = ec == asio::error::operation_aborted ? "cancelled"
                                                          : "client write failed: " + ec.message();
        co_return end;
      }
      out.clear();
    }
    auto message = co_await read_message(client, max_console_message);
    if (message.ec) {
      end.reason = message.ec == asio::error::operation_aborted
                       ? "cancelled"
                       : "client closed the admin console connection";
      co_return end;
    }
    if (message.error != protocol::FrameError::none) {
      end.reason =
          "protocol violation from admin console client: " + std::string(describe(message.error));
      end.client_code = sqlstate::protocol_violation;
      end.client_message = std::string(describe(message.error));
      co_return end;
    }
    const char type = message.type;
    if (type == 'X') {
      end.reason = "client terminated the admin console session";
      co_return end;
    }
    if (skipping_to_sync && type != 'S') continue;
    if (type == 'Q') {
      const auto body = message.body();
      std::string_view text(reinterpret_cast<const char*>(body.data()), body.size());
      if (const auto nul = text.find('\0'); nul != std::string_view::npos)
        text = text.substr(0, nul);
      const auto statements = split_statements(text);
      if (statements.empty()) append(out, protocol::empty_query_response());
      for (const auto& statement : statements) {
        // As in PostgreSQL, the first error ends the Query: later statements are not run.
        const auto parsed = parse_command(statement);
        if (const auto* error = std::get_if<AdminError>(&parsed)) {
          append(out, error_bytes(*error));
          break;
        }
        const auto result = co_await answer(std::get<AdminCommand>(parsed), backend);
        append(out, result.bytes);
        if (result.failed) break;
      }
      append(out, protocol::ready_for_query('I'));
      continue;
    }
    if (extended_protocol(type)) {
      // PostgreSQL discards everything up to Sync after an error in the extended protocol.
      append(out, error_bytes({sqlstate::feature_not_supported,
                               "the admin console accepts simple queries only",
                               "Send commands as simple Query messages, as psql does."}));
      skipping_to_sync = true;
      continue;
    }
    if (type == 'S') {
      skipping_to_sync = false;
      append(out, protocol::ready_for_query('I'));
      continue;
    }
    if (type == 'F') {
      append(out, error_bytes({sqlstate::feature_not_supported,
                               "the admin console accepts simple queries only",
                               {}}));
      append(out, protocol::ready_for_query('I'));
      continue;
    }
    if (type == 'H' || type == 'd' || type == 'c' || type == 'f') continue;  // nothing to do
    end.reason = "protocol violation from admin console client: invalid message type '" +
                 std::string(1, type) + "'";
    end.client_code = sqlstate::protocol_violation;
    end.client_message =
        "invalid frontend message type " + std::to_string(static_cast<unsigned char>(type));
    co_return end;
  }
}

}  // namespace seedproxy::proxy
