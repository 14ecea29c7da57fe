// Reading SET / RESET search_path statements, so unqualified names resolve as PostgreSQL would.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::rewriter {

struct SearchPathChange {
  bool reset = false;  // back to the default (RESET, SET … DEFAULT, RESET ALL)
  bool local = false;  // SET LOCAL: only until the transaction ends
  std::vector<std::string> schemas;
};

// The last search_path change a client text makes, if any. Cheap when the text does not
// mention search_path.
[[nodiscard]] std::optional<SearchPathChange> search_path_change(std::string_view sql);

// Splits a search_path value ("\"$user\", public") into schema names.
[[nodiscard]] std::vector<std::string> split_search_path(std::string_view value);

}  // namespace seedproxy::rewriter
