// The session's side of the resolver: rewrites Query and Parse messages through the rewriter,
// tracks search_path, swaps PostgreSQL's error for a refused statement into the client's error,
// and notices DDL so the catalog is reloaded.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/frame_codec.hpp"
#include "proxy/observer.hpp"
#include "rewriter/rewriter.hpp"

namespace seedproxy::seeds {
class SnapshotRegistry;
}

namespace seedproxy::proxy {

class StatementRewriting {
 public:
  // `search_path` is the session's initial setting from the startup packet, if it carried one.
  StatementRewriting(seeds::SnapshotRegistry& snapshots, std::string database, std::string user,
                     std::size_t max_statement_bytes, std::optional<std::string> search_path);

  // True while a catalog reload asked for after DDL has not been published yet: statements
  // that follow DDL must be resolved against the new catalog.
  [[nodiscard]] bool catalog_pending();

  // Where rewrite times, cache hits and attribute reads are reported (default: nowhere).
  void set_observer(Observer& observer) noexcept {
    observer_ = &observer;
    observing_ = &observer != &null_observer();
  }

  // The schemas unqualified names are looked up in now, "$user" expanded (DDL seeds use it).
  [[nodiscard]] std::vector<std::string> search_path() const { return effective_search_path(); }

  // A replacement for a whole client message ('Q' or 'P'), or nullopt to forward it as sent.
  [[nodiscard]] std::optional<std::vector<std::byte>> client_message(protocol::Bytes message);
  // A replacement for a whole server message ('E', 'C', 'Z'), or nullopt to forward it.
  [[nodiscard]] std::optional<std::vector<std::byte>> server_message(protocol::Bytes message);

 private:
  [[nodiscard]] std::optional<std::string> rewrite_text(std::string_view sql);
  void note_search_path(std::string_view sql);
  [[nodiscard]] std::vector<std::string> effective_search_path() const;

  seeds::SnapshotRegistry& snapshots_;
  std::string database_;
  std::string user_;
  std::size_t max_statement_bytes_;
  std::vector<std::string> default_search_path_;  // what RESET returns to
  std::vector<std::string> search_path_;          // as set; "$user" kept symbolic
  std::optional<std::vector<std::string>> local_search_path_;
  std::vector<std::pair<std::string, rewriter::SqlError>> pending_refusals_;
  std::uint64_t catalog_ticket_ = 0;
  Observer* observer_ = &null_observer();
  bool observing_ = false;  // false: no clock reads for the null observer
};

}  // namespace seedproxy::proxy
