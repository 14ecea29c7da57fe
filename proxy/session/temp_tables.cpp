// Temporary relations of one session, with the transaction their creation or drop belongs to.
#include "proxy/session/temp_tables.hpp"

#include <algorithm>

namespace seedproxy::proxy {

void TempTables::changing_now() {
  if (!before_) before_ = Committed{names_, on_commit_drop_};
  ++generation_;
}

bool TempTables::contains(std::string_view name) const noexcept {
  return std::find(names_.begin(), names_.end(), name) != names_.end();
}

void TempTables::created(std::string name, bool on_commit_drop) {
  // CREATE TEMP TABLE IF NOT EXISTS of one that exists: it stays as it was.
  if (contains(name)) return;
  changing_now();
  names_.push_back(std::move(name));
  on_commit_drop_.push_back(on_commit_drop);
}

void TempTables::dropped(std::string_view name) {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) return;
  changing_now();
  on_commit_drop_.erase(on_commit_drop_.begin() + (it - names_.begin()));
  names_.erase(it);
}

void TempTables::dropped_all() {
  if (names_.empty()) return;
  changing_now();
  names_.clear();
  on_commit_drop_.clear();
}

void TempTables::transaction_ended(bool committed) {
  if (!before_) return;
  if (committed) {
    for (std::size_t i = names_.size(); i-- > 0;)
      if (on_commit_drop_[i]) {
        names_.erase(names_.begin() + static_cast<std::ptrdiff_t>(i));
        on_commit_drop_.erase(on_commit_drop_.begin() + static_cast<std::ptrdiff_t>(i));
      }
  } else {
    names_ = std::move(before_->names);
    on_commit_drop_ = std::move(before_->on_commit_drop);
  }
  before_.reset();
  ++generation_;
}

}  // namespace seedproxy::proxy
