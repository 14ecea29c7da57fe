// Mapping a position in a rewritten text back to the client's text through the splice's edits.
#include "rewriter/splice/splice_map.hpp"

#include "common/text.hpp"

namespace seedproxy::rewriter {
namespace {

// Byte offset of the character `index` (0-based) of `text`; past the end, the bytes of the text
// plus the characters beyond it (a position just past the end is PostgreSQL's "end of input").
std::size_t byte_of_character(std::string_view text, std::size_t index) {
  std::size_t characters = 0;
  for (std::size_t at = 0; at < text.size(); ++at) {
    if (text::utf8_continuation(text[at])) continue;
    if (characters == index) return at;
    ++characters;
  }
  return text.size() + (index - characters);
}

int character_position(std::string_view text, std::size_t byte) {
  if (byte >= text.size())
    return static_cast<int>(text::utf8_count(text) + (byte - text.size())) + 1;
  return static_cast<int>(text::utf8_count(text.substr(0, byte))) + 1;
}

}  // namespace

std::optional<int> client_position(const SpliceMap& map, std::string_view client,
                                   std::string_view rewritten, int position) {
  if (position <= 0) return std::nullopt;
  const std::size_t at = byte_of_character(rewritten, static_cast<std::size_t>(position - 1));
  // Rewritten offset minus client offset so far: what the edits before `at` added (or removed).
  long long growth = 0;
  for (const Splice& splice : map) {
    const long long begin = static_cast<long long>(splice.client_begin) + growth;
    if (static_cast<long long>(at) < begin) break;
    if (static_cast<long long>(at) < begin + splice.length) {
      if (splice.anchor == Splice::no_anchor) return std::nullopt;
      return character_position(client, splice.anchor);
    }
    growth += static_cast<long long>(splice.length) -
              (static_cast<long long>(splice.client_end) - splice.client_begin);
  }
  const long long byte = static_cast<long long>(at) - growth;
  return character_position(client, byte < 0 ? 0 : static_cast<std::size_t>(byte));
}

}  // namespace seedproxy::rewriter
