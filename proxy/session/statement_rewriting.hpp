// The session's side of the resolver: rewrites Query and Parse messages through the rewriter,
// tracks search_path, swaps PostgreSQL's error for a refused statement into the client's error,
// notices DDL so the catalog is reloaded, counts seed reads per executed statement, and re-Parses
// a client's named statement whose rewrite changed with the seed snapshot.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/observe/observer.hpp"
#include "proxy/session/prepared_statements.hpp"
#include "proxy/wire/frame_codec.hpp"
#include "rewriter/splice/rewriter.hpp"

namespace seedproxy::seeds {
class SnapshotSource;
class ReadTally;
}  // namespace seedproxy::seeds

namespace seedproxy::proxy {

class StatementRewriting {
 public:
  // `search_path` is the session's initial setting from the startup packet, if it carried one.
  StatementRewriting(seeds::SnapshotSource& snapshots, std::string database, std::string user,
                     std::size_t max_statement_bytes, std::optional<std::string> search_path);

  // True while a catalog reload asked for after DDL has not been published yet: statements
  // that follow DDL must be resolved against the new catalog.
  [[nodiscard]] bool catalog_pending();
  // Waits (without polling) until catalog_pending() is false or `timeout` passes.
  [[nodiscard]] boost::asio::awaitable<void> wait_for_catalog(
      std::chrono::steady_clock::duration timeout);

  // Where rewrite times, cache hits and attribute reads are reported (default: nowhere).
  void set_observer(Observer& observer) noexcept {
    observer_ = &observer;
    observing_ = &observer != &null_observer();
  }

  // Where executed reads of seeds are tallied for the registry (null: nowhere).
  void set_read_tally(seeds::ReadTally* tally) noexcept { tally_ = tally; }

  // The schemas unqualified names are looked up in now, "$user" expanded (DDL seeds use it).
  [[nodiscard]] std::vector<std::string> search_path() const { return effective_search_path(); }

  // A replacement for a whole client message ('Q', 'P', 'B', 'D'; also sees 'E', 'C', 'S', 'F'),
  // or nullopt to forward it as sent. Every such message must come through here or through
  // note_replaced_client_message, in order.
  [[nodiscard]] std::optional<std::vector<std::byte>> client_message(protocol::Bytes message);
  // A client message too long to hold whole (over the rewrite limit), seen by its head: it is
  // streamed as sent, never rewritten, but its names keep the bookkeeping in step. Returns what
  // must be sent ahead of it (a stale named statement's Close and Parse before a Bind), or
  // nothing.
  [[nodiscard]] std::vector<std::byte> streamed_client_message(protocol::Bytes head);
  // Bookkeeping for a client 'Q' or 'P' that something else replaced (DDL seeds' stand-ins).
  void note_replaced_client_message(protocol::Bytes message);
  // For every server '1', '3', 'E' and 'Z', before anything else sees it: true when it answers a
  // message this class injected and must not reach the client.
  [[nodiscard]] bool drop_server_message(protocol::Bytes message);
  // A replacement for a whole server message ('E', 'C', 'Z'), or nullopt to forward it.
  [[nodiscard]] std::optional<std::vector<std::byte>> server_message(protocol::Bytes message);

  [[nodiscard]] const PreparedStatements& prepared() const noexcept { return prepared_; }

 private:
  struct Lookup {
    StatementRewrite rewrite;       // null: the text cannot involve a seed
    std::uint64_t version = 0;      // of the snapshot looked in (0: none yet)
    std::vector<std::string> path;  // the search_path resolved with, when `rewrite` is set
  };
  // The rewrite of `sql` under the current snapshot, with `path` or the session's search_path.
  [[nodiscard]] Lookup lookup(std::string_view sql, const std::vector<std::string>* path = nullptr);
  // The text to send for `rewrite`, or nullptr to send the client's; remembers refusals.
  [[nodiscard]] const std::string* text_to_send(const rewriter::CachedRewrite& rewrite);
  void count_reads(const rewriter::CachedRewrite& rewrite);
  [[nodiscard]] std::optional<std::vector<std::byte>> parse_message(protocol::Bytes body);
  // Close + Parse of the named statement when its rewrite changed since it was sent, to go
  // ahead of the message that uses it.
  [[nodiscard]] std::optional<std::vector<std::byte>> refresh(std::string_view name);
  // `message` with refresh(name) ahead of it, or nullopt when nothing changed.
  [[nodiscard]] std::optional<std::vector<std::byte>> refresh(std::string_view name,
                                                              protocol::Bytes message);
  void note_search_path(std::string_view sql);
  [[nodiscard]] std::vector<std::string> effective_search_path() const;

  seeds::SnapshotSource& snapshots_;
  std::string database_;
  std::string user_;
  std::size_t max_statement_bytes_;
  std::vector<std::string> default_search_path_;  // what RESET returns to
  std::vector<std::string> search_path_;          // as set; "$user" kept symbolic
  std::optional<std::vector<std::string>> local_search_path_;
  std::vector<std::pair<std::string, rewriter::SqlError>> pending_refusals_;
  std::uint64_t catalog_ticket_ = 0;
  PreparedStatements prepared_;
  seeds::ReadTally* tally_ = nullptr;
  Observer* observer_ = &null_observer();
  bool observing_ = false;  // false: no clock reads for the null observer
};

}  // namespace seedproxy::proxy
