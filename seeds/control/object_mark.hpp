// The comment that marks the objects seedproxy creates upstream (a materialized seed's column,
// its trigger function), so a restarted engine or a rollback can tell them from the user's, and
// the catalog can tell a column that is going away with its rolled-back seed.
#pragma once

namespace seedproxy::seeds {

// A constant, so pasting it as a literal (COMMENT takes no parameters) is safe.
inline constexpr const char* object_mark =
    "seedproxy: added by the materialization of a seed; dropped by its rollback";

}  // namespace seedproxy::seeds
