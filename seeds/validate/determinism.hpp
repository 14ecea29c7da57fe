// Whether a seed's expression is deterministic, judged from PostgreSQL's analysed query tree (the
// stored rule of the validator's temporary check view): every function, operator and I/O cast it
// uses must be IMMUTABLE, and nothing may read the clock, the session, a sequence, a parameter or
// a system column. Also tells whether the expression reads other relations.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "seeds/control/control_connection.hpp"
#include "seeds/validate/expression_scan.hpp"

namespace seedproxy::seeds {

struct DeterminismVerdict {
  std::string cause;         // empty when deterministic, else e.g. "random() is VOLATILE"
  int location = -1;         // byte offset of the culprit in the view's statement, -1 when unknown
  bool cross_table = false;  // a subquery, or a relation other than the entity
  bool locks_rows = false;   // a subquery with FOR UPDATE/SHARE (reads must never lock rows)
};

// `tree` is pg_rewrite.ev_action of the view `view_oid` over the entity `entity_oid`, created by a
// statement whose expression starts at byte `expression_at`; `literals` are the expression's
// string literals (for date/time literals such as 'now'). Reads volatility from the catalogs.
[[nodiscard]] DeterminismVerdict judge_determinism(ControlConnection& connection,
                                                   std::string_view tree,
                                                   const std::string& view_oid,
                                                   const std::string& entity_oid,
                                                   std::size_t expression_at,
                                                   const std::vector<StringLiteral>& literals);

}  // namespace seedproxy::seeds
