// Re-preparing a SQL-prepared statement: statements inserted into a Query with their splice map,
// and the extended-protocol messages that do the same in front of a Bind.
#include "proxy/session/reprepare.hpp"

#include "common/identifiers.hpp"
#include "proxy/wire/messages.hpp"

namespace seedproxy::proxy {

std::shared_ptr<const rewriter::CachedRewrite> compose(std::string_view client,
                                                       const rewriter::CachedRewrite* rewrite,
                                                       const std::vector<Insertion>& insertions) {
  using Outcome = rewriter::RewriteResult::Outcome;
  auto out = std::make_shared<rewriter::CachedRewrite>();
  const bool changed = rewrite && rewrite->outcome != Outcome::unchanged;
  if (rewrite) *out = *rewrite;
  out->outcome = changed ? rewrite->outcome : Outcome::rewritten;
  const std::string_view base = changed ? std::string_view(rewrite->sql) : client;
  const rewriter::SpliceMap none;
  const rewriter::SpliceMap& edits = changed ? rewrite->splices : none;
  std::string& sql = out->sql;
  sql.clear();
  rewriter::SpliceMap& map = out->splices;
  map.clear();
  map.reserve(edits.size() + insertions.size());
  std::size_t copied = 0;  // bytes of `base` already in `sql`
  long long growth = 0;    // what the rewrite's edits before the insertion point added
  std::size_t edit = 0;
  for (const auto& insertion : insertions) {
    // The rewrite's edits that start before the insertion point stay ahead of it.
    for (; edit < edits.size() && edits[edit].client_begin < insertion.at; ++edit) {
      map.push_back(edits[edit]);
      growth += static_cast<long long>(edits[edit].length) -
                (static_cast<long long>(edits[edit].client_end) - edits[edit].client_begin);
    }
    const auto at = static_cast<std::size_t>(static_cast<long long>(insertion.at) + growth);
    sql.append(base.substr(copied, at - copied));
    sql.append(insertion.text);
    copied = at;
    const auto offset = static_cast<std::uint32_t>(insertion.at);
    map.push_back({offset, offset, static_cast<std::uint32_t>(insertion.text.size()),
                   rewriter::Splice::no_anchor});
  }
  for (; edit < edits.size(); ++edit) map.push_back(edits[edit]);
  sql.append(base.substr(copied));
  return out;
}

std::string reprepare_statements(std::string_view name, bool held, std::string_view prepare) {
  std::string out;
  if (held) out = "DEALLOCATE " + pg::quote_identifier(name) + "; ";
  out.append(prepare);
  // On a line of its own: the PREPARE text may end in a -- comment.
  out.append("\n; ");
  return out;
}

std::vector<std::byte> reprepare_messages(std::string_view name, std::string_view prepare) {
  protocol::PacketWriter writer;
  writer.begin('C');
  writer.put_u8('S');
  writer.put_cstring(name);
  writer.finish();
  writer.begin('P');
  writer.put_cstring(reprepare_name);
  writer.put_cstring(prepare);
  writer.put_u16(0);  // no parameter types
  writer.finish();
  writer.begin('B');
  writer.put_cstring(reprepare_name);  // portal
  writer.put_cstring(reprepare_name);  // statement
  writer.put_u16(0);                   // parameter formats
  writer.put_u16(0);                   // parameters
  writer.put_u16(0);                   // result formats
  writer.finish();
  writer.begin('E');
  writer.put_cstring(reprepare_name);
  writer.put_u32(0);  // all rows (PREPARE returns none)
  writer.finish();
  for (const char target : {'P', 'S'}) {
    writer.begin('C');
    writer.put_u8(static_cast<std::uint8_t>(target));
    writer.put_cstring(reprepare_name);
    writer.finish();
  }
  return writer.take();
}

}  // namespace seedproxy::proxy
