// A rewrite kept as a template: the rewrite of one client text with the positions of its constants,
// so a text that differs from it only in those constants gets its rewrite by splicing them in,
// without parsing. The text's shape (its bytes with each constant replaced by a marker of the
// constant's token type) is what the cache is keyed on.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/parse/sql_lexer.hpp"
#include "rewriter/splice/cached_rewrite.hpp"

namespace seedproxy::rewriter {

struct Shape {
  // "S" and the text with each constant token replaced by NUL and its Literal; "X" and the text
  // itself for a text holding a NUL byte (whose constants are not looked for).
  std::string body;
  std::vector<Token> constants;  // the constant tokens, in text order
};

[[nodiscard]] Shape shape_of(std::string_view sql);

struct RewriteTemplate {
  std::shared_ptr<const CachedRewrite> rewrite;  // of the text the template was made from
  // Constants that must be byte for byte the same for the template to apply (their value may
  // change the rewrite): by index into Shape::constants.
  struct Pin {
    std::uint32_t constant = 0;
    std::string text;
  };
  std::vector<Pin> pinned;
  // Constants spliced in: their extent in the client's text and in rewrite->sql.
  struct Slot {
    std::uint32_t constant = 0;
    std::uint32_t client_begin = 0, client_end = 0;
    std::uint32_t sent_begin = 0, sent_end = 0;
  };
  std::vector<Slot> slots;
};

// The template of `rewrite`, made from `sql` whose constants are `constants`. Slots are the
// constants listed in `value_constants` (start offsets, ascending: value_constants()) that no edit
// of the rewrite covers or points into; every other constant is pinned, all of them for a refusal
// (its marker and error position come from the exact text).
[[nodiscard]] RewriteTemplate make_template(std::string_view sql, std::span<const Token> constants,
                                            std::span<const std::int32_t> value_constants,
                                            std::shared_ptr<const CachedRewrite> rewrite);

// Whether `tmpl` applies to `sql` (of the same shape, with constants `constants`).
[[nodiscard]] bool template_matches(const RewriteTemplate& tmpl, std::string_view sql,
                                    std::span<const Token> constants);

// The rewrite of `sql` (which template_matches): the template's with `sql`'s constants spliced
// in, its splice map moved by their change in length.
[[nodiscard]] std::shared_ptr<const CachedRewrite> instantiate(const RewriteTemplate& tmpl,
                                                               std::string_view sql,
                                                               std::span<const Token> constants);

// What a template costs a cache's byte budget.
[[nodiscard]] std::size_t template_bytes(const RewriteTemplate& tmpl);

}  // namespace seedproxy::rewriter
