// Typed read-only views of the frontend (client) messages the proxy reads: Query, Parse, Bind,
// Describe, Close and Execute. Each takes a message body (after type byte and length word) and
// returns nullopt unless the body has exactly the layout PostgreSQL accepts; views point into
// the body and live as long as it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {

// Query ('Q').
struct QueryView {
  std::string_view sql;
};
[[nodiscard]] std::optional<QueryView> read_query(Bytes body) noexcept;

// Parse ('P').
struct ParseView {
  std::string_view name;  // empty: the unnamed statement
  std::string_view sql;
  // The Int16 count and Int32 type OIDs that follow the text, as sent (forwarded unchanged when
  // the text is replaced, so numbering and types stay the client's).
  Bytes parameter_types;
  std::uint16_t parameter_count = 0;
};
[[nodiscard]] std::optional<ParseView> read_parse(Bytes body) noexcept;

// Bind ('B'). Parameter values and formats are checked for layout, not kept.
struct BindView {
  std::string_view portal;     // empty: the unnamed portal
  std::string_view statement;  // empty: the unnamed statement
  std::uint16_t parameter_count = 0;
};
[[nodiscard]] std::optional<BindView> read_bind(Bytes body) noexcept;

// What Describe and Close name.
enum class Target : char { statement = 'S', portal = 'P' };

// Describe ('D') and Close ('C') share one layout.
struct DescribeView {
  Target target = Target::statement;
  std::string_view name;
};
using CloseView = DescribeView;
[[nodiscard]] std::optional<DescribeView> read_describe(Bytes body) noexcept;
[[nodiscard]] std::optional<CloseView> read_close(Bytes body) noexcept;

// Execute ('E').
struct ExecuteView {
  std::string_view portal;
  std::int32_t max_rows = 0;  // 0 or less: no limit
};
[[nodiscard]] std::optional<ExecuteView> read_execute(Bytes body) noexcept;

// True when `received` (bytes read from a client, starting at a message boundary) is whole
// messages and the last is a Query or a Sync: the client waits for the answer before it sends
// more, unless it pipelines (whose next bytes raise a readiness event of their own). Lengths are
// not checked against any limit here; the relay does that.
[[nodiscard]] bool ends_client_turn(Bytes received) noexcept;

}  // namespace seedproxy::protocol
