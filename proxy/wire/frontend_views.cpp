// Frontend message views: each layout walked with a bounds-checked reader, as PostgreSQL's
// postgres.c reads it (pq_getmsgstring, pq_getmsgint, pq_getmsgend).
#include "proxy/wire/frontend_views.hpp"

#include "proxy/wire/body_reader.hpp"
#include "proxy/wire/frame_codec.hpp"

namespace seedproxy::protocol {
namespace {

// `count` Int16 values (format codes), skipped.
bool skip_u16s(BodyReader& reader, std::uint16_t count) noexcept {
  return reader.bytes(std::size_t{count} * 2).has_value();
}

}  // namespace

std::optional<QueryView> read_query(Bytes body) noexcept {
  BodyReader reader(body);
  const auto sql = reader.cstring();
  if (!sql || !reader.at_end()) return std::nullopt;
  return QueryView{*sql};
}

std::optional<ParseView> read_parse(Bytes body) noexcept {
  BodyReader reader(body);
  const auto name = reader.cstring();
  const auto sql = reader.cstring();
  const Bytes parameter_types = reader.rest();
  const auto count = reader.u16();
  if (!name || !sql || !count || !reader.bytes(std::size_t{*count} * 4) || !reader.at_end())
    return std::nullopt;
  return ParseView{*name, *sql, parameter_types, *count};
}

std::optional<BindView> read_bind(Bytes body) noexcept {
  BodyReader reader(body);
  const auto portal = reader.cstring();
  const auto statement = reader.cstring();
  const auto formats = reader.u16();
  if (!portal || !statement || !formats || !skip_u16s(reader, *formats)) return std::nullopt;
  const auto count = reader.u16();
  if (!count) return std::nullopt;
  for (std::uint16_t i = 0; i < *count; ++i) {
    const auto length = reader.u32();
    if (!length) return std::nullopt;
    if (*length == 0xFFFFFFFFu) continue;  // -1: NULL
    if (*length > 0x7FFFFFFFu || !reader.bytes(*length)) return std::nullopt;
  }
  const auto result_formats = reader.u16();
  if (!result_formats || !skip_u16s(reader, *result_formats) || !reader.at_end())
    return std::nullopt;
  return BindView{*portal, *statement, *count};
}

std::optional<DescribeView> read_describe(Bytes body) noexcept {
  BodyReader reader(body);
  const auto target = reader.u8();
  const auto name = reader.cstring();
  if (!target || !name || !reader.at_end()) return std::nullopt;
  if (*target != 'S' && *target != 'P') return std::nullopt;
  return DescribeView{static_cast<Target>(*target), *name};
}

std::optional<CloseView> read_close(Bytes body) noexcept { return read_describe(body); }

std::optional<ExecuteView> read_execute(Bytes body) noexcept {
  BodyReader reader(body);
  const auto portal = reader.cstring();
  const auto max_rows = reader.u32();
  if (!portal || !max_rows || !reader.at_end()) return std::nullopt;
  return ExecuteView{*portal, static_cast<std::int32_t>(*max_rows)};
}

bool ends_client_turn(Bytes received) noexcept {
  std::size_t at = 0;
  char last = 0;
  while (at + message_header_size <= received.size()) {
    BodyReader reader(received.subspan(at + 1, 4));
    const auto length = reader.u32();
    if (!length || *length < 4) return false;
    last = static_cast<char>(received[at]);
    if (*length > received.size() - at - 1) return false;
    at += 1 + *length;
  }
  return at == received.size() && (last == 'Q' || last == 'S');
}

}  // namespace seedproxy::protocol
