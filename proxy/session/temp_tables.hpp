// The session's temporary tables and views as its completed statements show them: created or
// dropped ones count from their CommandComplete, and last only if their transaction commits
// (ON COMMIT DROP ones never outlive it). The rewriter resolves an unqualified name among them
// to the temporary relation, which has no seed. Pure bookkeeping: no sockets, no snapshots.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace seedproxy::proxy {

class TempTables {
 public:
  // A statement creating or dropping them completed (in the transaction open now).
  void created(std::string name, bool on_commit_drop);
  void dropped(std::string_view name);
  void dropped_all();
  // The transaction those changes belong to ended: committed or rolled back.
  void transaction_ended(bool committed);
  // True while a change waits for its transaction to end.
  [[nodiscard]] bool changing() const noexcept { return before_.has_value(); }

  // The temporary relations that exist now, as the session's next statement sees them.
  [[nodiscard]] const std::vector<std::string>& names() const noexcept { return names_; }
  [[nodiscard]] bool contains(std::string_view name) const noexcept;
  // Changes whenever names() does.
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }

 private:
  struct Committed {
    std::vector<std::string> names;
    std::vector<bool> on_commit_drop;
  };
  void changing_now();

  std::vector<std::string> names_;
  std::vector<bool> on_commit_drop_;  // parallel to names_
  std::optional<Committed> before_;   // as they were when the open transaction changed them
  std::uint64_t generation_ = 0;
};

}  // namespace seedproxy::proxy
