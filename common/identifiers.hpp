// PostgreSQL identifiers: their length limit, case folding of dotted names, and quoting for
// generated SQL (and the one free text generated SQL carries, a comment).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::pg {

// NAMEDATALEN - 1: PostgreSQL silently truncates longer identifiers.
inline constexpr std::size_t max_identifier_bytes = 63;

// Always quotes, doubling embedded quotes, so generated SQL never depends on case or keywords.
[[nodiscard]] std::string quote_identifier(std::string_view name);

// `text` as one SQL comment, `/* text */`, on one line: a `/*` or `*/` inside (PostgreSQL's
// comments nest) is split by a space and line breaks become spaces, so no text ends it early.
[[nodiscard]] std::string sql_comment(std::string_view text);
// As PostgreSQL writes a name in its own messages (quote_identifier in ruleutils.c): as it is
// when it is a plain lower-case identifier, quoted otherwise (keywords are not recognised here).
[[nodiscard]] std::string quote_identifier_if_needed(std::string_view name);

// A dotted name split into its parts with PostgreSQL's identifier folding (quoted parts keep
// their case and may contain dots); nullopt for an empty part or an unclosed quote.
[[nodiscard]] std::optional<std::vector<std::string>> split_qualified_name(std::string_view name);

// "schema.table" or "table" (schema public) with PostgreSQL's identifier folding; quoted parts
// keep their case. Returns false when `entity` is not of that shape.
[[nodiscard]] bool split_entity(std::string_view entity, std::string& schema, std::string& table);

}  // namespace seedproxy::pg
