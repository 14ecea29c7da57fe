// Encoding the proxy's own query results: RowDescription, DataRow, CommandComplete.
#include "proxy/wire/result_set.hpp"

#include <cassert>
#include <cmath>
#include <cstdio>

#include "proxy/wire/messages.hpp"

namespace seedproxy::protocol {

void ResultSet::add_row(std::vector<Value> row) {
  assert(row.size() == columns_.size());
  row.resize(columns_.size());
  rows_.push_back(std::move(row));
}

std::vector<std::byte> ResultSet::encode(std::string_view tag) const {
  PacketWriter writer;
  writer.begin('T');
  writer.put_u16(static_cast<std::uint16_t>(columns_.size()));
  for (const auto& column : columns_) {
    writer.put_cstring(column.name);
    writer.put_u32(0);  // not a table column
    writer.put_u16(0);
    writer.put_u32(column.type);
    // typlen as pg_type has it: variable-length text, fixed-size numbers and bool.
    std::int16_t size = -1;
    if (column.type == type_oid::boolean) size = 1;
    if (column.type == type_oid::int8 || column.type == type_oid::float8 ||
        column.type == type_oid::timestamptz)
      size = 8;
    writer.put_u16(static_cast<std::uint16_t>(size));
    writer.put_u32(0xFFFFFFFFu);  // typmod -1
    writer.put_u16(0);            // text format
  }
  writer.finish();
  for (const auto& row : rows_) {
    writer.begin('D');
    writer.put_u16(static_cast<std::uint16_t>(row.size()));
    for (const auto& value : row) {
      if (!value) {
        writer.put_u32(0xFFFFFFFFu);
        continue;
      }
      writer.put_u32(static_cast<std::uint32_t>(value->size()));
      writer.put_bytes(*value);
    }
    writer.finish();
  }
  writer.begin('C');
  writer.put_bytes(tag);
  if (tag == "SELECT") {
    writer.put_u8(' ');
    writer.put_bytes(std::to_string(rows_.size()));
  }
  writer.put_u8(0);
  writer.finish();
  return writer.take();
}

std::string bool_text(bool value) { return value ? "t" : "f"; }

std::string float8_text(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  char text[40];
  std::snprintf(text, sizeof text, "%.15g", value);
  return text;
}

std::vector<std::byte> command_complete(std::string_view tag) { return cstring_message('C', tag); }

std::vector<std::byte> ready_for_query(char status) {
  PacketWriter writer;
  writer.begin('Z');
  writer.put_u8(static_cast<std::uint8_t>(status));
  writer.finish();
  return writer.take();
}

std::vector<std::byte> empty_query_response() {
  PacketWriter writer;
  writer.begin('I');
  writer.finish();
  return writer.take();
}

}  // namespace seedproxy::protocol
