// What a client text may hold, from one pass over its bytes: the cheap gates the session runs on
// every Query and Parse before it decides whether the text is worth parsing.
#pragma once

#include <string_view>

namespace seedproxy::rewriter {

// Each clue may be true when the text does not hold the statement (a word in a literal or a
// comment), never false when it does. A "word" is a whole run of identifier bytes (letters,
// digits, '_', '$', bytes >= 0x80), compared ignoring ASCII case.
struct StatementClues {
  // might_change_catalog(): some ';'-separated chunk begins with a catalog-changing word.
  bool catalog_change = false;
  // "search_path" or "reset" occurs anywhere (search_path_change() may find a change).
  bool search_path = false;
  // The word TEMP, TEMPORARY or PG_TEMP: a temporary relation may be created.
  bool temporary = false;
  // The words PREPARE, EXECUTE, DEALLOCATE, DROP, DISCARD (session_statements.hpp).
  bool prepare = false;
  bool execute = false;
  bool deallocate = false;
  bool drop = false;
  bool discard = false;

  bool operator==(const StatementClues&) const = default;
};

// All clues of `sql` in one pass.
[[nodiscard]] StatementClues statement_clues(std::string_view sql) noexcept;

// statement_clues(sql).search_path alone, for a session that needs no other clue (no seed, nothing
// followed): a search for the two substrings' first and last bytes, 16 positions at a time, about
// a tenth of the instructions of the whole pass.
[[nodiscard]] bool search_path_clue(std::string_view sql) noexcept;

}  // namespace seedproxy::rewriter
