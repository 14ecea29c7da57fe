// One pass over a client text for every "may this text hold X" gate: the text is walked word by
// word (runs of identifier bytes), each word is compared only with the keywords of its length,
// and each ';' starts a chunk whose first word decides whether it may change the catalog.
#include "rewriter/statements/statement_clues.hpp"

#include <array>
#include <cstdint>

#include "common/text.hpp"

namespace seedproxy::rewriter {
namespace {

// Per byte: whether it belongs to an identifier, and which searched substring may start there.
constexpr std::uint8_t identifier = 1;
constexpr std::uint8_t starts_r = 2;  // "reset"
constexpr std::uint8_t starts_s = 4;  // "search_path"

constexpr std::array<std::uint8_t, 256> byte_classes = [] {
  std::array<std::uint8_t, 256> out{};
  for (int c = 0; c < 256; ++c) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (letter || (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80)
      out[static_cast<std::size_t>(c)] = identifier;
  }
  for (const char c : {'r', 'R'}) out[static_cast<unsigned char>(c)] |= starts_r;
  for (const char c : {'s', 'S'}) out[static_cast<unsigned char>(c)] |= starts_s;
  return out;
}();

std::uint8_t class_of(char c) noexcept { return byte_classes[static_cast<unsigned char>(c)]; }

bool is(std::string_view word, std::string_view keyword) noexcept {
  return text::equals_ignoring_case(word, keyword);
}

// The first word of `chunk` after blanks, comments (nested, as in PostgreSQL) and opening
// parentheses, as the client wrote it.
std::string_view first_word(std::string_view chunk) noexcept {
  std::size_t i = 0;
  while (i < chunk.size()) {
    const char c = chunk[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(') {
      ++i;
    } else if (chunk.substr(i, 2) == "--") {
      const auto end = chunk.find('\n', i);
      i = end == std::string_view::npos ? chunk.size() : end + 1;
    } else if (chunk.substr(i, 2) == "/*") {
      int depth = 0;
      while (i < chunk.size()) {
        if (chunk.substr(i, 2) == "/*") {
          ++depth;
          i += 2;
        } else if (chunk.substr(i, 2) == "*/") {
          i += 2;
          if (--depth == 0) break;
        } else {
          ++i;
        }
      }
    } else {
      break;
    }
  }
  std::size_t end = i;
  while (end < chunk.size() && (class_of(chunk[end]) & identifier)) ++end;
  return chunk.substr(i, end - i);
}

// What a chunk's later words can still add to its catalog clue.
enum class Wanted { nothing, create, into };

// The chunk of `sql` that begins at `begin` (up to the next ';', quotes ignored: a ';' inside a
// literal only adds a chunk, and a real statement always begins one).
Wanted begin_chunk(std::string_view sql, std::size_t begin, StatementClues& out) noexcept {
  if (out.catalog_change) return Wanted::nothing;
  const std::string_view chunk = sql.substr(begin, sql.find(';', begin) - begin);
  const std::string_view word = first_word(chunk);
  if (word.size() < 2 || word.size() > 7) return Wanted::nothing;
  if (is(word, "create") || is(word, "alter") || is(word, "drop") || is(word, "import") ||
      is(word, "do") || is(word, "call")) {
    out.catalog_change = true;
    return Wanted::nothing;
  }
  if (is(word, "explain")) return Wanted::create;  // EXPLAIN ANALYZE CREATE TABLE AS
  if (is(word, "select") || is(word, "with")) return Wanted::into;
  return Wanted::nothing;
}

// Whether `needle` (lower case) occurs in `word` ignoring ASCII case.
bool holds(std::string_view word, std::string_view needle) noexcept {
  for (std::size_t i = 0; i + needle.size() <= word.size(); ++i) {
    std::size_t j = 0;
    while (j < needle.size() && text::ascii_lower(word[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

// One whole word; `classes` is the union of its bytes' classes.
void note_word(std::string_view word, std::uint8_t classes, Wanted wanted,
               StatementClues& out) noexcept {
  // Both substrings are made of identifier bytes, so an occurrence lies inside one word.
  if (word.size() >= 5 && (classes & starts_r) && !out.search_path)
    out.search_path = holds(word, "reset");
  if (word.size() >= 11 && (classes & starts_s) && !out.search_path)
    out.search_path = holds(word, "search_path");
  switch (word.size()) {
    case 4:
      if (wanted == Wanted::into && is(word, "into")) out.catalog_change = true;
      if (is(word, "temp")) out.temporary = true;
      if (is(word, "drop")) out.drop = true;
      break;
    case 6:
      if (wanted == Wanted::create && is(word, "create")) out.catalog_change = true;
      break;
    case 7:
      if (is(word, "pg_temp")) out.temporary = true;
      if (is(word, "prepare")) out.prepare = true;
      if (is(word, "execute")) out.execute = true;
      if (is(word, "discard")) out.discard = true;
      break;
    case 9:
      if (is(word, "temporary")) out.temporary = true;
      break;
    case 10:
      if (is(word, "deallocate")) out.deallocate = true;
      break;
    default:
      break;
  }
}

}  // namespace

StatementClues statement_clues(std::string_view sql) noexcept {
  StatementClues out;
  Wanted wanted = begin_chunk(sql, 0, out);
  const std::size_t size = sql.size();
  std::size_t i = 0;
  while (i < size) {
    std::uint8_t classes = class_of(sql[i]);
    if (!(classes & identifier)) {
      if (sql[i] == ';') wanted = begin_chunk(sql, i + 1, out);
      ++i;
      continue;
    }
    const std::size_t begin = i;
    std::uint8_t seen = 0;
    do {
      seen |= classes;
      ++i;
    } while (i < size && ((classes = class_of(sql[i])) & identifier));
    note_word(sql.substr(begin, i - begin), seen, wanted, out);
  }
  return out;
}

}  // namespace seedproxy::rewriter
