// Lexical gate for text the validator pastes into its check statements (a seed's expression or
// type): refuses what could escape the parentheses it is wrapped in, before PostgreSQL sees it.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::seeds {

struct ScanProblem {
  std::string cause;       // e.g. "contains a statement separator ';'"
  std::size_t offset = 0;  // byte offset of the culprit in the text
};

struct StringLiteral {
  std::size_t begin = 0;  // byte offset of the opening quote (or of the E/U&/B/X prefix)
  std::string value;      // the content, quotes removed, '' folded to '
};

struct ScanResult {
  std::optional<ScanProblem> problem;
  std::vector<StringLiteral> literals;
};

// Tokenizes `text` the way PostgreSQL's lexer does for strings, quoted identifiers, dollar quotes
// and comments, and refuses: an empty text, a NUL byte, ';' or a comment outside literals, an
// unterminated literal or quoted identifier, a parameter placeholder ($1), a ')' closing a
// parenthesis the text did not open, a '(' left open, a ',' outside parentheses, and a text that
// starts with a query keyword (SELECT, WITH, VALUES, TABLE). With none of those, the text pasted
// between "((" and "))" stays inside them: it is an expression (or a parenthesised subquery).
// `backslash_strings` is true when standard_conforming_strings is off.
[[nodiscard]] ScanResult scan_pasted_text(std::string_view text, bool backslash_strings = false);

}  // namespace seedproxy::seeds
