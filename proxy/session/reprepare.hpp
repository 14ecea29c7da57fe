// Preparing a client's SQL-prepared statement (PREPARE name AS ...) again when the seed snapshot
// changed its rewrite: the statements the proxy puts into a Query in front of the EXECUTE (with
// the splice map that keeps error positions the client's), and the extended-protocol messages it
// puts in front of a Bind. PostgreSQL's answers to both are dropped on the way back.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rewriter/splice/rewrite_cache.hpp"

namespace seedproxy::proxy {

// A text the proxy puts into a client's Query at byte `at` of the client's text, a statement's
// start (never inside a statement, so never inside one of the rewrite's edits).
struct Insertion {
  std::size_t at = 0;
  std::string text;
};

// The Query text to send: `rewrite` of `client` (null: the client's text as written) with
// `insertions` (ascending) put in, and the splice map from the client's text to it, where a
// position inside an inserted text is none of the client's (no anchor).
[[nodiscard]] std::shared_ptr<const rewriter::CachedRewrite> compose(
    std::string_view client, const rewriter::CachedRewrite* rewrite,
    const std::vector<Insertion>& insertions);

// What goes into a Query in front of an EXECUTE of `name`: DEALLOCATE name (when PostgreSQL
// holds a statement of that name) and then `prepare`, the statement's PREPARE text, each ending
// in its own ';'. Two statements when `held`, else one.
[[nodiscard]] std::string reprepare_statements(std::string_view name, bool held,
                                               std::string_view prepare);

// The extended-protocol messages that prepare `name` again: Close (statement `name`: no error when
// there is none), then Parse, Bind, Execute, Close (portal), Close (statement) of the proxy's own
// unparameterised statement running `prepare`. Answered by '3', '1', '2', 'C', '3', '3'.
[[nodiscard]] std::vector<std::byte> reprepare_messages(std::string_view name,
                                                        std::string_view prepare);

// The name of the proxy's own statement and portal in reprepare_messages.
inline constexpr std::string_view reprepare_name = "seedproxy reprepare";

}  // namespace seedproxy::proxy
