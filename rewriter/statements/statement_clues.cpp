// One pass over a client text for every "may this text hold X" gate: the text is classified 64
// bytes at a time into bit masks (SSE2 where the target has it), the walk jumps from word to word
// and to the few bytes that matter between them (';' and comment openers), each word is compared
// only with the keywords of its length, eight bytes at a time, and each ';' starts a chunk whose
// first word decides whether it may change the catalog. The search_path clue alone, which a
// session without seeds or followed statements needs, has a search of its own.
#include "rewriter/statements/statement_clues.hpp"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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

inline std::uint8_t class_of(char c) noexcept {
  return byte_classes[static_cast<unsigned char>(c)];
}

// The first (up to) 8 bytes of a word, the first in the lowest octet, with bit 5 of each set.
// Among identifier bytes that folds only a letter's two cases together ('_' becomes DEL, digits
// stay digits, bytes >= 0x80 stay >= 0x80, and no identifier byte lands on those), so a word and
// an ASCII keyword of the same length with equal folds are equal ignoring case.
constexpr std::uint64_t case_bits = 0x2020202020202020ULL;

constexpr std::uint64_t length_mask(std::size_t n) noexcept {
  return n >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * n)) - 1;
}

struct Keyword {
  std::string_view text;  // lower case
  std::uint64_t folded = 0;
  consteval explicit Keyword(std::string_view keyword) : text(keyword) {
    for (std::size_t k = 0; k < keyword.size() && k < 8; ++k)
      folded |= std::uint64_t{static_cast<unsigned char>(keyword[k]) | 0x20u} << (8 * k);
  }
};

struct Word {
  std::string_view text;
  std::uint64_t folded = 0;

  // The word of `sql` from `begin` to `end`.
  Word(std::string_view sql, std::size_t begin, std::size_t end) noexcept
      : text(sql.substr(begin, end - begin)) {
    const char* at = sql.data() + begin;
    const std::size_t n = text.size() < 8 ? text.size() : 8;
    if (std::endian::native == std::endian::little && sql.size() - begin >= 8) {
      std::memcpy(&folded, at, 8);  // one load; the bytes past the word are masked off
    } else {
      for (std::size_t k = 0; k < n; ++k)
        folded |= std::uint64_t{static_cast<unsigned char>(at[k])} << (8 * k);
    }
    folded = (folded | case_bits) & length_mask(n);
  }

  // Whether the word is `keyword` ignoring ASCII case (the caller checked the length).
  [[nodiscard]] bool is(const Keyword& keyword) const noexcept {
    if (folded != keyword.folded) return false;
    for (std::size_t k = 8; k < keyword.text.size(); ++k)
      if (text::ascii_lower(text[k]) != keyword.text[k]) return false;
    return true;
  }
};

constexpr Keyword k_create{"create"}, k_alter{"alter"}, k_drop{"drop"}, k_import{"import"},
    k_do{"do"}, k_call{"call"}, k_explain{"explain"}, k_select{"select"}, k_with{"with"},
    k_into{"into"}, k_temp{"temp"}, k_temporary{"temporary"}, k_pg_temp{"pg_temp"},
    k_prepare{"prepare"}, k_execute{"execute"}, k_deallocate{"deallocate"}, k_discard{"discard"};

// Where the comment that starts at `i` of `text` ends: "--" at the end of its line, "/*" after
// its matching "*/" (nested, as in PostgreSQL), or at the end of `text`.
std::size_t comment_end(std::string_view text, std::size_t i) noexcept {
  if (text[i] == '-') return std::min(text.find('\n', i), text.size());
  int depth = 0;
  while (i < text.size()) {
    if (text.substr(i, 2) == "/*") {
      ++depth;
      i += 2;
    } else if (text.substr(i, 2) == "*/") {
      i += 2;
      if (--depth == 0) break;
    } else {
      ++i;
    }
  }
  return i;
}

// Where the first word of the chunk [begin, end) of `sql` starts, after blanks, comments
// and opening parentheses.
std::size_t first_word(std::string_view sql, std::size_t i, std::size_t end) noexcept {
  const std::string_view chunk = sql.substr(0, end);
  while (i < end) {
    const char c = chunk[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '(') {
      ++i;
    } else if (chunk.substr(i, 2) == "--" || chunk.substr(i, 2) == "/*") {
      i = comment_end(chunk, i);
    } else {
      break;
    }
  }
  return i;
}

// What a chunk's later words can still add to its catalog clue.
enum class Wanted { nothing, create, into };

// The chunk of `sql` that begins at `begin` (up to the next ';', quotes ignored: a ';' inside a
// literal only adds a chunk, and a real statement always begins one).
Wanted begin_chunk(std::string_view sql, std::size_t begin, StatementClues& out) noexcept {
  if (out.catalog_change) return Wanted::nothing;
  const std::size_t end = std::min(sql.find(';', begin), sql.size());
  const std::size_t at = first_word(sql, begin, end);
  std::size_t past = at;
  while (past < end && (class_of(sql[past]) & identifier)) ++past;
  const Word word(sql, at, past);
  switch (word.text.size()) {
    case 2:
      out.catalog_change = word.is(k_do);
      return Wanted::nothing;
    case 4:
      out.catalog_change = word.is(k_drop) || word.is(k_call);
      return !out.catalog_change && word.is(k_with) ? Wanted::into : Wanted::nothing;
    case 5:
      out.catalog_change = word.is(k_alter);
      return Wanted::nothing;
    case 6:
      out.catalog_change = word.is(k_create) || word.is(k_import);
      return !out.catalog_change && word.is(k_select) ? Wanted::into : Wanted::nothing;
    case 7:
      return word.is(k_explain) ? Wanted::create : Wanted::nothing;  // EXPLAIN ... CREATE ... AS
    default:
      return Wanted::nothing;
  }
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
void note_word(const Word& word, std::uint8_t classes, Wanted wanted,
               StatementClues& out) noexcept {
  const std::size_t size = word.text.size();
  // Both substrings are made of identifier bytes, so an occurrence lies inside one word.
  if (size >= 5 && (classes & starts_r) && !out.search_path)
    out.search_path = holds(word.text, "reset");
  if (size >= 11 && (classes & starts_s) && !out.search_path)
    out.search_path = holds(word.text, "search_path");
  switch (size) {
    case 4:
      if (wanted == Wanted::into && word.is(k_into)) out.catalog_change = true;
      if (word.is(k_temp)) out.temporary = true;
      if (word.is(k_drop)) out.drop = true;
      break;
    case 6:
      if (wanted == Wanted::create && word.is(k_create)) out.catalog_change = true;
      break;
    case 7:
      if (word.is(k_pg_temp)) out.temporary = true;
      if (word.is(k_prepare)) out.prepare = true;
      if (word.is(k_execute)) out.execute = true;
      if (word.is(k_discard)) out.discard = true;
      break;
    case 9:
      if (word.is(k_temporary)) out.temporary = true;
      break;
    case 10:
      if (word.is(k_deallocate)) out.deallocate = true;
      break;
    default:
      break;
  }
}

// Word lengths note_word compares (bit n: length n), and the shortest with a substring to look for.
constexpr std::uint32_t keyword_lengths =
    (1u << 4) | (1u << 6) | (1u << 7) | (1u << 9) | (1u << 10);
constexpr std::size_t shortest_substring = 5;

// The word of `sql` from `begin` to `end`, if its length or its letters make it worth comparing.
void finish_word(std::string_view sql, std::size_t begin, std::size_t end, std::uint8_t seen,
                 Wanted wanted, StatementClues& out) noexcept {
  const std::size_t length = end - begin;
  if ((length < 32 && (keyword_lengths >> length) & 1) ||
      (length >= shortest_substring && (seen & (starts_r | starts_s))))
    note_word(Word(sql, begin, end), seen, wanted, out);
}

// 64 bytes of a text as bit masks (bit k: byte k of the block): identifier bytes, the 'r' and
// 's' that may start a searched substring, and the bytes that may start a chunk or a comment.
struct Block {
  std::uint64_t identifier = 0;
  std::uint64_t r = 0;
  std::uint64_t s = 0;
  std::uint64_t special = 0;  // ';', '-', '/'
};

#if defined(__SSE2__)
// Whether each byte of `v` lies in [lo, hi], as SSE2 (signed compares only) can say it.
inline __m128i in_range(__m128i v, char lo, char hi) noexcept {
  const __m128i biased = _mm_add_epi8(v, _mm_set1_epi8(static_cast<char>(0x80 - lo)));
  return _mm_cmplt_epi8(biased, _mm_set1_epi8(static_cast<char>(-128 + (hi - lo) + 1)));
}

inline std::uint64_t bits(__m128i mask, int shift) noexcept {
  return std::uint64_t{static_cast<std::uint16_t>(_mm_movemask_epi8(mask))} << shift;
}

// 64 readable bytes at `at`, sixteen at a time.
Block classify_full(const char* at) noexcept {
  Block out;
  for (int k = 0; k < 64; k += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at + k));
    const __m128i folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
    const __m128i word =
        _mm_or_si128(_mm_or_si128(in_range(folded, 'a', 'z'), in_range(v, '0', '9')),
                     _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('_')),
                                               _mm_cmpeq_epi8(v, _mm_set1_epi8('$'))),
                                  _mm_cmplt_epi8(v, _mm_setzero_si128())));  // bytes >= 0x80
    const __m128i special = _mm_or_si128(
        _mm_cmpeq_epi8(v, _mm_set1_epi8(';')),
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('-')), _mm_cmpeq_epi8(v, _mm_set1_epi8('/'))));
    out.identifier |= bits(word, k);
    out.r |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8('r')), k);
    out.s |= bits(_mm_cmpeq_epi8(folded, _mm_set1_epi8('s')), k);
    out.special |= bits(special, k);
  }
  return out;
}
#else
Block classify_full(const char* at) noexcept {
  Block out;
  for (int k = 0; k < 64; ++k) {
    const std::uint8_t c = class_of(at[k]);
    const std::uint64_t bit = std::uint64_t{1} << k;
    if (c & identifier) out.identifier |= bit;
    if (c & starts_r) out.r |= bit;
    if (c & starts_s) out.s |= bit;
    if (at[k] == ';' || at[k] == '-' || at[k] == '/') out.special |= bit;
  }
  return out;
}
#endif

// The block of `sql` that starts at `base`; past the end of a short last block, bytes count as
// NUL (no class).
Block classify(std::string_view sql, std::size_t base) noexcept {
  if (sql.size() - base >= 64) return classify_full(sql.data() + base);
  std::array<char, 64> padded{};
  std::memcpy(padded.data(), sql.data() + base, sql.size() - base);
  return classify_full(padded.data());
}

// The r/s classes of the bytes of `block` selected by `mask`.
inline std::uint8_t letters_in(const Block& block, std::uint64_t mask) noexcept {
  return static_cast<std::uint8_t>(((block.r & mask) ? starts_r : 0) |
                                   ((block.s & mask) ? starts_s : 0));
}

// Bits [from, from + length) of a 64-bit mask (from < 64, length <= 64 - from).
inline std::uint64_t span_mask(unsigned from, unsigned length) noexcept {
  const std::uint64_t low = length >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << length) - 1;
  return low << from;
}

// What the walk over the blocks carries from one to the next.
struct Walk {
  std::string_view sql;
  StatementClues out;
  Wanted wanted = Wanted::nothing;
  std::size_t comments_checked = 0;           // each byte is looked at for comments once
  std::size_t open = std::string_view::npos;  // a word running past the block before began here
  std::uint8_t open_seen = 0;

  // A ';', '-' or '/' at `i`.
  void special(std::size_t i) noexcept {
    const char c = sql[i];
    if (c == ';') {
      wanted = begin_chunk(sql, i + 1, out);
    } else if (i >= comments_checked && i + 1 < sql.size() &&
               sql[i + 1] == (c == '-' ? '-' : '*')) {
      // Chunks are cut at every ';', so one inside a comment before a statement's first word
      // would hide that word ("-- step 1; add b\nALTER TABLE t ..."): such a text gets the
      // catalog clue (quotes are not followed, so a "--" inside a literal may give a false one
      // too; it only costs a parse).
      comments_checked = comment_end(sql, i);
      out.catalog_change = out.catalog_change ||
                           sql.substr(i, comments_checked - i).find(';') != std::string_view::npos;
    }
  }

  // The block at `base`: the end of a word still open, then words and special bytes in order.
  void block(std::size_t base) noexcept {
    const Block b = classify(sql, base);
    std::uint64_t starts = b.identifier & ~(b.identifier << 1);
    if (open != std::string_view::npos) {
      starts &= ~std::uint64_t{1};
      const std::uint64_t rest = ~b.identifier;
      if (rest == 0) {  // the word fills this block too
        open_seen |= letters_in(b, ~std::uint64_t{0});
        return;
      }
      const auto end = static_cast<unsigned>(std::countr_zero(rest));
      open_seen |= letters_in(b, span_mask(0, end));
      finish_word(sql, open, base + end, open_seen, wanted, out);
      open = std::string_view::npos;
    }
    for (std::uint64_t events = starts | b.special; events != 0; events &= events - 1) {
      const auto k = static_cast<unsigned>(std::countr_zero(events));
      if ((b.special >> k) & 1) {
        special(base + k);
        continue;
      }
      const std::uint64_t rest = ~b.identifier >> k;
      if (rest == 0) {  // runs into the next block
        open = base + k;
        open_seen = letters_in(b, span_mask(k, 64 - k));
        return;
      }
      const auto length = static_cast<unsigned>(std::countr_zero(rest));
      finish_word(sql, base + k, base + k + length, letters_in(b, span_mask(k, length)), wanted,
                  out);
    }
  }
};

// Whether `needle` (lower case) starts at `at` of `sql`, ignoring ASCII case.
bool holds_at(std::string_view sql, std::size_t at, std::string_view needle) noexcept {
  if (sql.size() - at < needle.size()) return false;
  for (std::size_t k = 0; k < needle.size(); ++k)
    if (text::ascii_lower(sql[at + k]) != needle[k]) return false;
  return true;
}

#if defined(__SSE2__)
// Bit k set when position k of the 16 starting at `at` may begin "reset" (its first and fifth
// bytes are r and t) or "search_path" (first and eleventh s and h); `at` + 26 bytes are readable.
// Setting bit 5 folds only a letter's two cases onto the lower one, so these tests are exact for
// the two bytes they look at.
inline unsigned candidates(const char* at) noexcept {
  const __m128i bit5 = _mm_set1_epi8(0x20);
  const auto folded = [&](int offset) {
    return _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + offset)), bit5);
  };
  const __m128i first = folded(0);
  const __m128i reset = _mm_and_si128(_mm_cmpeq_epi8(first, _mm_set1_epi8('r')),
                                      _mm_cmpeq_epi8(folded(4), _mm_set1_epi8('t')));
  const __m128i search = _mm_and_si128(_mm_cmpeq_epi8(first, _mm_set1_epi8('s')),
                                       _mm_cmpeq_epi8(folded(10), _mm_set1_epi8('h')));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(reset, search)));
}

// The same for "reset" alone; `at` + 20 bytes are readable.
inline unsigned reset_candidates(const char* at) noexcept {
  const __m128i bit5 = _mm_set1_epi8(0x20);
  const __m128i first = _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at)), bit5);
  const __m128i fifth =
      _mm_or_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(at + 4)), bit5);
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_and_si128(
      _mm_cmpeq_epi8(first, _mm_set1_epi8('r')), _mm_cmpeq_epi8(fifth, _mm_set1_epi8('t')))));
}

// Whether one of the candidates `mask` marks among the 16 positions from `base` of `sql` begins
// one of the two substrings.
bool confirmed(std::string_view sql, std::size_t base, unsigned mask) noexcept {
  for (; mask != 0; mask &= mask - 1) {
    const std::size_t at = base + static_cast<unsigned>(std::countr_zero(mask));
    if (at >= sql.size()) return false;
    if (holds_at(sql, at, "reset") || holds_at(sql, at, "search_path")) return true;
  }
  return false;
}
#endif

}  // namespace

bool search_path_clue(std::string_view sql) noexcept {
#if defined(__SSE2__)
  constexpr std::size_t reach = 26;  // the last load of a step ends 26 bytes past its position
  std::size_t base = 0;
  for (; base + reach <= sql.size(); base += 16)
    if (confirmed(sql, base, candidates(sql.data() + base))) return true;
  if (const std::size_t n = sql.size(); n >= reach) {
    // The last positions from blocks that end with the text, without a copy (positions seen
    // already are looked at again, harmlessly): both substrings up to n - 11, then "reset",
    // which alone can start in the last ten, up to n - 5.
    if (confirmed(sql, n - reach, candidates(sql.data() + n - reach))) return true;
    return confirmed(sql, n - 20, reset_candidates(sql.data() + n - 20));
  }
  // A text under 26 bytes, zero-padded: a NUL folds to ' ', never a letter, and positions past
  // the text are ignored.
  std::array<char, 48> padded{};
  std::memcpy(padded.data(), sql.data() + base, sql.size() - base);
  for (std::size_t k = 0; base + k < sql.size(); k += 16)
    if (confirmed(sql, base + k, candidates(padded.data() + k))) return true;
  return false;
#else
  return text::contains_ignoring_case(sql, "reset") ||
         text::contains_ignoring_case(sql, "search_path");
#endif
}

StatementClues statement_clues(std::string_view sql) noexcept {
  Walk walk{sql, {}};
  walk.wanted = begin_chunk(sql, 0, walk.out);
  for (std::size_t base = 0; base < sql.size(); base += 64) walk.block(base);
  if (walk.open != std::string_view::npos)
    finish_word(sql, walk.open, sql.size(), walk.open_seen, walk.wanted, walk.out);
  return walk.out;
}

}  // namespace seedproxy::rewriter
