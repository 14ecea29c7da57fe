// Which constants of a parsed text are plain values: constants whose value cannot change the
// rewrite, so a text differing from it only in them may share its rewrite (the shape cache).
#pragma once

#include <cstdint>
#include <vector>

#include "rewriter/parse/pg_parser.hpp"

namespace seedproxy::rewriter {

// The start offsets (bytes, ascending) of the constant tokens of `parsed` (Token::literal set)
// that are plain values: an A_Const of a SELECT, INSERT, UPDATE or DELETE (the sign of a negated
// number stays outside: the token is the number), not a positional ORDER BY, GROUP BY, DISTINCT
// ON or PARTITION BY item, not inside a type name (varchar(10)), grouping set or window
// partition. Empty when any statement of the text is of another kind (SET, PREPARE, EXECUTE,
// DECLARE, CREATE FUNCTION, EXPLAIN, ...: the proxy or the resolver reads their constants), or
// when the text did not parse.
[[nodiscard]] std::vector<std::int32_t> value_constants(const ParsedSql& parsed);

}  // namespace seedproxy::rewriter
