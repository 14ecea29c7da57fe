// A query result the proxy answers itself (admin console): text columns with PostgreSQL type
// OIDs, encoded as RowDescription, DataRows and CommandComplete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::protocol {

// Type OIDs from pg_type that the proxy's own results use.
namespace type_oid {
inline constexpr std::uint32_t boolean = 16;
inline constexpr std::uint32_t int8 = 20;
inline constexpr std::uint32_t text = 25;
inline constexpr std::uint32_t float8 = 701;
inline constexpr std::uint32_t timestamptz = 1184;
}  // namespace type_oid

struct Column {
  std::string name;
  std::uint32_t type = type_oid::text;
};

// Values are in PostgreSQL's text output format; nullopt is SQL NULL.
using Value = std::optional<std::string>;

class ResultSet {
 public:
  explicit ResultSet(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // Appends a row; it must have exactly one value per column.
  void add_row(std::vector<Value> row);

  [[nodiscard]] std::size_t row_count() const noexcept { return rows_.size(); }
  [[nodiscard]] const std::vector<Column>& columns() const noexcept { return columns_; }

  // RowDescription, one DataRow per row, then CommandComplete with `tag` ("SHOW").
  [[nodiscard]] std::vector<std::byte> encode(std::string_view tag) const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<Value>> rows_;
};

// Text forms PostgreSQL uses for these types.
[[nodiscard]] std::string bool_text(bool value);
[[nodiscard]] std::string float8_text(double value);

// CommandComplete alone, for commands without rows ("RELOAD").
[[nodiscard]] std::vector<std::byte> command_complete(std::string_view tag);
// ReadyForQuery with a transaction status ('I').
[[nodiscard]] std::vector<std::byte> ready_for_query(char status);
[[nodiscard]] std::vector<std::byte> empty_query_response();

}  // namespace seedproxy::protocol
