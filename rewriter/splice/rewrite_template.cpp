// Shapes, templates and splicing constants into a template.
#include "rewriter/splice/rewrite_template.hpp"

#include <algorithm>

namespace seedproxy::rewriter {
namespace {

std::string_view text_of(std::string_view sql, const Token& token) {
  return sql.substr(static_cast<std::size_t>(token.start),
                    static_cast<std::size_t>(token.end - token.start));
}

// Whether the edit `splice` covers bytes of `constant`, or points inside it.
bool touches(const Splice& splice, const Token& constant) {
  const auto begin = static_cast<std::uint32_t>(constant.start);
  const auto end = static_cast<std::uint32_t>(constant.end);
  if (begin < splice.client_end && end > splice.client_begin) return true;
  return splice.anchor != Splice::no_anchor && splice.anchor > begin && splice.anchor < end;
}

// Offset of the client's byte `at` in the rewritten text: `at` plus the growth of the edits
// wholly before it.
std::uint32_t sent_offset(const SpliceMap& splices, std::uint32_t at) {
  long long growth = 0;
  for (const Splice& splice : splices) {
    if (splice.client_end > at) break;  // an insertion at `at` goes before it
    growth += static_cast<long long>(splice.length) -
              (static_cast<long long>(splice.client_end) - splice.client_begin);
  }
  return static_cast<std::uint32_t>(static_cast<long long>(at) + growth);
}

}  // namespace

Shape shape_of(std::string_view sql) {
  Shape shape;
  if (sql.find('\0') != std::string_view::npos) {
    shape.body.reserve(sql.size() + 1);
    shape.body.push_back('X');
    shape.body.append(sql);
    return shape;
  }
  shape.constants = lex_constants(sql);
  shape.body.reserve(sql.size() + 1);
  shape.body.push_back('S');
  std::size_t at = 0;
  for (const Token& token : shape.constants) {
    const auto start = static_cast<std::size_t>(token.start);
    shape.body.append(sql.substr(at, start - at));
    shape.body.push_back('\0');
    shape.body.push_back(static_cast<char>('0' + static_cast<int>(token.literal)));
    at = static_cast<std::size_t>(token.end);
  }
  shape.body.append(sql.substr(at));
  return shape;
}

RewriteTemplate make_template(std::string_view sql, std::span<const Token> constants,
                              std::span<const std::int32_t> value_constants,
                              std::shared_ptr<const CachedRewrite> rewrite) {
  RewriteTemplate out;
  const bool refused = rewrite->outcome == RewriteResult::Outcome::refused;
  for (std::uint32_t i = 0; i < constants.size(); ++i) {
    const Token& constant = constants[i];
    const bool value = !refused && std::binary_search(value_constants.begin(),
                                                      value_constants.end(), constant.start);
    const bool edited = std::any_of(rewrite->splices.begin(), rewrite->splices.end(),
                                    [&](const Splice& s) { return touches(s, constant); });
    if (!value || edited) {
      out.pinned.push_back({i, std::string(text_of(sql, constant))});
      continue;
    }
    const auto begin = static_cast<std::uint32_t>(constant.start);
    const auto end = static_cast<std::uint32_t>(constant.end);
    const auto sent = sent_offset(rewrite->splices, begin);
    out.slots.push_back({i, begin, end, sent, sent + (end - begin)});
  }
  out.rewrite = std::move(rewrite);
  return out;
}

bool template_matches(const RewriteTemplate& tmpl, std::string_view sql,
                      std::span<const Token> constants) {
  return std::all_of(tmpl.pinned.begin(), tmpl.pinned.end(), [&](const RewriteTemplate::Pin& pin) {
    return pin.constant < constants.size() && text_of(sql, constants[pin.constant]) == pin.text;
  });
}

std::shared_ptr<const CachedRewrite> instantiate(const RewriteTemplate& tmpl, std::string_view sql,
                                                 std::span<const Token> constants) {
  const CachedRewrite& model = *tmpl.rewrite;
  // Unchanged texts are sent as the client wrote them; a text without slots is the model's own.
  if (tmpl.slots.empty() || model.outcome == RewriteResult::Outcome::unchanged) return tmpl.rewrite;
  auto out = std::make_shared<CachedRewrite>();
  out->outcome = model.outcome;
  out->reads = model.reads;
  out->sql.reserve(model.sql.size() + 16);
  std::size_t at = 0;
  for (const auto& slot : tmpl.slots) {
    out->sql.append(model.sql, at, slot.sent_begin - at);
    out->sql.append(text_of(sql, constants[slot.constant]));
    at = slot.sent_end;
  }
  out->sql.append(model.sql, at, std::string::npos);
  // Each edit and anchor moves by the change in length of the constants before it.
  out->splices = model.splices;
  const auto shift = [&](std::uint32_t offset) {
    long long delta = 0;
    for (const auto& slot : tmpl.slots) {
      if (slot.client_end > offset) break;
      const Token& now = constants[slot.constant];
      delta += static_cast<long long>(now.end - now.start) -
               static_cast<long long>(slot.client_end - slot.client_begin);
    }
    return static_cast<std::uint32_t>(static_cast<long long>(offset) + delta);
  };
  for (Splice& splice : out->splices) {
    const auto length = splice.client_end - splice.client_begin;
    splice.client_begin = shift(splice.client_begin);
    splice.client_end = splice.client_begin + length;
    if (splice.anchor != Splice::no_anchor) splice.anchor = shift(splice.anchor);
  }
  return out;
}

std::size_t template_bytes(const RewriteTemplate& tmpl) {
  std::size_t bytes = 256 + tmpl.slots.size() * sizeof(RewriteTemplate::Slot);
  for (const auto& pin : tmpl.pinned) bytes += sizeof pin + pin.text.size();
  const CachedRewrite& model = *tmpl.rewrite;
  bytes += model.sql.size() + model.splices.size() * sizeof(Splice) + model.error.message.size() +
           model.error.detail.size() + model.refusal_marker.size();
  for (const auto& read : model.reads)
    bytes += sizeof read + read.schema.size() + read.table.size() + read.attribute.size();
  return bytes;
}

}  // namespace seedproxy::rewriter
