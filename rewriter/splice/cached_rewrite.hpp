// What the rewrite cache keeps of one rewrite: no pointers into the snapshot it came from.
#pragma once

#include <string>
#include <vector>

#include "rewriter/splice/rewriter.hpp"

namespace seedproxy::rewriter {

struct CachedRewrite {
  RewriteResult::Outcome outcome = RewriteResult::Outcome::unchanged;
  std::string sql;
  SqlError error;
  std::string refusal_marker;
  // The virtual attributes the text reads, once per statement that reads them, by name.
  struct Read {
    std::string schema, table, attribute;
  };
  std::vector<Read> reads;
  // The edits that made `sql` from the client's text, for error positions (client_position).
  SpliceMap splices;
};

}  // namespace seedproxy::rewriter
