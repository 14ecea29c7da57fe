// Where a rewritten text came from: the splice's edits as byte ranges of the client's text and the
// lengths of what replaced them, so a position PostgreSQL reports in the rewritten text (an
// ErrorResponse's or NoticeResponse's 'P' field) can be given back in the client's own text.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace seedproxy::rewriter {

// One applied edit: bytes [client_begin, client_end) of the client's text became `length` bytes
// of the rewritten text, at client_begin plus the growth of the edits before it.
struct Splice {
  std::uint32_t client_begin = 0;
  std::uint32_t client_end = 0;
  std::uint32_t length = 0;
  // Where a position inside the replacement points in the client's text (a byte offset), or
  // no_anchor when the client's text had nothing there PostgreSQL would point at.
  std::uint32_t anchor = 0;
  static constexpr std::uint32_t no_anchor = UINT32_MAX;
};

// The edits of one rewrite, in text order and not overlapping; empty for an unchanged text.
using SpliceMap = std::vector<Splice>;

// The 1-based character position in `client` of `position`, a 1-based character position in
// `rewritten`, which `map` made from `client` (UTF-8: characters, not bytes, as PostgreSQL counts):
//   before the first edit, or between edits, the same character shifted by the edits before it;
//   inside an edit's replacement, the edit's anchor (the reference, '*' or relation it replaced);
//   past the end, the client's text end plus what lies beyond (PostgreSQL's "at end of input").
// nullopt ("no position") for a position inside generated text with no anchor (TABLE t spelled
// out: PostgreSQL gives no position for the columns of TABLE's '*'), and for position <= 0.
[[nodiscard]] std::optional<int> client_position(const SpliceMap& map, std::string_view client,
                                                 std::string_view rewritten, int position);

}  // namespace seedproxy::rewriter
