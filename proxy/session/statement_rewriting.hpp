// The session's side of the resolver: rewrites Query and Parse messages through the rewriter,
// tracks search_path, swaps PostgreSQL's error for a refused statement into the client's error,
// gives error and notice positions back in the client's text, notices DDL so the catalog is
// reloaded, counts seed reads per executed statement, follows temporary tables, and prepares a
// client's statement (Parse or SQL PREPARE) again when the seed snapshot changed its rewrite.
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
#include "proxy/session/reprepare.hpp"
#include "proxy/wire/frame_codec.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "rewriter/statements/catalog_effect.hpp"
#include "rewriter/statements/session_statements.hpp"
#include "rewriter/statements/statement_clues.hpp"

namespace seedproxy::seeds {
class SnapshotSource;
class ReadTally;
struct DatabaseSnapshot;
}  // namespace seedproxy::seeds

namespace seedproxy::proxy {

class StatementRewriting {
 public:
  // `search_path` is the session's initial setting from the startup packet, if it carried one.
  StatementRewriting(seeds::SnapshotSource& snapshots, std::string database, std::string user,
                     std::size_t max_statement_bytes, std::optional<std::string> search_path);
  ~StatementRewriting();
  StatementRewriting(const StatementRewriting&) = delete;
  StatementRewriting& operator=(const StatementRewriting&) = delete;

  // True while a reload asked for (the database's first, or a catalog refresh after DDL) has not
  // been published yet.
  [[nodiscard]] bool catalog_pending();
  // Whether the client bytes `buffered` (read from a message boundary when `at_boundary`) must
  // wait for a reload before they are relayed: the database's first load, always; a catalog
  // refresh after DDL, or a lease to renew, only when they hold a statement that touches seeds
  // (statements that cannot are relayed at once). Asks for the refresh an expired lease needs.
  [[nodiscard]] bool must_wait(protocol::Bytes buffered, bool at_boundary);
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

  // The type of every server message as it starts, streamed or not, in order ('D' may be left
  // out): keeps the queue of answers in step.
  void server_started(char type);
  // For a whole server message ('1', '2', '3', 'C', 'E', 'N', 'Z') right after server_started
  // saw it start: a replacement, an empty vector to drop it (it answers a message the proxy
  // injected), or nullopt to forward it.
  [[nodiscard]] std::optional<std::vector<std::byte>> server_message(protocol::Bytes message);

  [[nodiscard]] const PreparedStatements& prepared() const noexcept { return prepared_; }

 private:
  struct Lookup {
    StatementRewrite rewrite;       // null: the text cannot involve a seed
    std::uint64_t version = 0;      // of the snapshot looked in (0: none yet)
    std::vector<std::string> path;  // the search_path resolved with, when `rewrite` is set
  };
  using SessionStatements = std::vector<rewriter::SessionStatement>;
  // The rewrite of `sql` under `snapshot` (the current one, taken once per statement), with
  // `path` or the session's search_path, and the session's temporary tables.
  [[nodiscard]] Lookup lookup(std::string_view sql, const seeds::DatabaseSnapshot* snapshot,
                              const std::vector<std::string>* path = nullptr);
  // The session's temporary relations whose names mean a relation of `catalog` under `path`:
  // only those change a rewrite.
  [[nodiscard]] std::vector<std::string> shadowing(const rewriter::Catalog& catalog,
                                                   const std::vector<std::string>& path) const;
  // The text to send for `rewrite`, or nullptr to send the client's; remembers refusals.
  [[nodiscard]] const std::string* text_to_send(const rewriter::CachedRewrite& rewrite);
  // Reads of `rewrite`, less those of `except` (statements whose reads count elsewhere).
  void count_reads(const rewriter::CachedRewrite& rewrite,
                   const std::vector<rewriter::CachedRewrite::Read>* except = nullptr);
  // The statements of `sql` the session must follow, when it has a reason to read them (its
  // `clues` say it may hold one; `mentions_seeds`: the text names a seeded table or attribute).
  [[nodiscard]] std::optional<SessionStatements> statements_of(
      std::string_view sql, const rewriter::StatementClues& clues, bool mentions_seeds) const;
  [[nodiscard]] std::optional<std::vector<std::byte>> query_message(protocol::Bytes body);
  [[nodiscard]] std::optional<std::vector<std::byte>> parse_message(protocol::Bytes body);
  // What the proxy must do for one statement of a client text: its step, and what to insert
  // in front of it (a Query's EXECUTE of a statement that must be prepared again).
  struct Planned {
    std::shared_ptr<Steps> steps;
    std::vector<Insertion> insertions;
    std::vector<rewriter::CachedRewrite::Read> prepared_reads;  // counted at each EXECUTE
    // Names an earlier statement of the text prepares or deallocates (`all`: every name): an
    // EXECUTE of one runs what the client made of it, never the statement the proxy follows.
    std::vector<std::string> replaced;
    bool all_replaced = false;
  };
  void plan(std::string_view sql, const rewriter::SessionStatement& statement, bool in_query,
            Planned& planned);
  // The text `statement` must be prepared with again, when the snapshot changed since and its
  // rewrite differs (or an earlier attempt did not take); its fields are updated to it.
  [[nodiscard]] std::optional<std::string> stale_text(PreparedStatements::Statement& statement);
  // Messages to send in front of `message` (a Bind or Describe of `name`) when the statement,
  // or the SQL statement it EXECUTEs, must be prepared again.
  [[nodiscard]] std::optional<std::vector<std::byte>> refresh(std::string_view name,
                                                              protocol::Bytes message);
  // An ErrorResponse or NoticeResponse with its position given back in the client's text.
  [[nodiscard]] std::optional<std::vector<std::byte>> map_position(protocol::Bytes message);
  [[nodiscard]] std::optional<std::vector<std::byte>> swap_refusal(protocol::Bytes message);
  // Whether a statement may be rewritten or change more than the search_path the session follows:
  // `snapshot` has a live seed (its DDL matters too), or the session holds what a text can change
  // (statements, temporary tables, a search_path that DISCARD ALL resets).
  [[nodiscard]] bool reads_statements(const seeds::DatabaseSnapshot* snapshot) const noexcept;
  // Notes the search_path `sql` sets and returns its clues, or nullopt when nothing else about it
  // can matter (reads_statements is false): then it is relayed as sent and not followed.
  [[nodiscard]] std::optional<rewriter::StatementClues> clues_of(
      std::string_view sql, const seeds::DatabaseSnapshot* snapshot);
  void note_search_path(std::string_view sql, const rewriter::StatementClues& clues);
  void reset_search_path();
  [[nodiscard]] std::vector<std::string> effective_search_path() const;
  // Remembers what the DDL in `sql` changes in the catalog (only where seeds are live).
  void note_catalog_effect(std::string_view sql, const rewriter::StatementClues& clues,
                           const seeds::DatabaseSnapshot* snapshot);
  // A prediction is read from the client's text: void when the rewriter changed it.
  void note_rewritten_ddl(const Lookup& found);
  // After a ReadyForQuery: asks for the catalog refresh the DDL since needs, once committed, and
  // puts the session's own committed ALTER TABLE into its predicted view.
  void ddl_done(bool idle);
  // The snapshot statements are resolved against: the session's predicted view while the refresh
  // it asked for is not published, else the database's newest.
  [[nodiscard]] std::shared_ptr<const seeds::DatabaseSnapshot> current_snapshot();
  // The predicted view after the one ALTER TABLE since the last ReadyForQuery committed, or null.
  [[nodiscard]] std::shared_ptr<const seeds::DatabaseSnapshot> predict(
      const rewriter::CatalogPrediction& prediction);
  // Whether a whole Query, Parse, Bind or Describe in `buffered` may involve a seed.
  [[nodiscard]] bool touches_seeds(protocol::Bytes buffered);
  // The refusal a statement touching seeds gets while the snapshot is not trusted.
  [[nodiscard]] StatementRewrite stale_refusal();

  seeds::SnapshotSource& snapshots_;
  std::string database_;
  std::string user_;
  std::size_t max_statement_bytes_;
  // What RESET returns to, and the path as set ("$user" kept symbolic); while a session keeps
  // PostgreSQL's default (or its startup packet's), neither is allocated.
  [[nodiscard]] const std::vector<std::string>& default_search_path() const;
  [[nodiscard]] const std::vector<std::string>& session_search_path() const;
  // Pointers rather than optionals: most sessions never set one, and each idle session's
  // memory counts (an empty optional vector takes 32 bytes, a null pointer 8).
  using SearchPath = std::unique_ptr<const std::vector<std::string>>;
  SearchPath default_search_path_;  // null: "$user", public
  SearchPath search_path_;          // null: the default
  SearchPath local_search_path_;
  // Allocated at the first refusal: most sessions never have one.
  using PendingRefusals = std::vector<std::pair<std::string, rewriter::SqlError>>;
  std::unique_ptr<PendingRefusals> pending_refusals_;
  std::uint64_t catalog_ticket_ = 0;
  // DDL sent since the last refresh request, and whether any was sent since the last
  // ReadyForQuery (ddl_text_seen_ below: a DDL CommandComplete without one is a statement whose
  // text was not read).
  std::unique_ptr<rewriter::CatalogEffect> sent_effect_;  // allocated at the first DDL
  // The session's predicted view (predicted_snapshot.hpp), good until catalog_ticket_ is answered.
  std::shared_ptr<const seeds::DatabaseSnapshot> predicted_;
  // sent_effect_->prediction may be applied at the next ReadyForQuery: its Query or Parse came
  // outside a transaction with no answer outstanding and no client message after it but its own
  // Bind/Describe/Execute/Sync (`armed`), and PostgreSQL completed it without error (`completed`).
  bool prediction_armed_ = false;
  bool prediction_completed_ = false;
  // The flags side by side, so padding does not grow every session.
  bool first_load_ = false;  // catalog_ticket_ is the database's first load: every byte waits
  bool ddl_text_seen_ = false;
  bool observing_ = false;         // false: no clock reads for the null observer
  char transaction_status_ = 'I';  // of the last ReadyForQuery
  int awaiting_ready_ = 0;         // client Query, Sync and FunctionCall not answered yet
  // When this session last waited for a refresh of an expired lease: it waits once a second at
  // most, and refuses meanwhile.
  std::chrono::steady_clock::time_point last_trust_wait_{};
  std::uint64_t stale_refusals_ = 0;  // numbers the markers of those refusals
  PreparedStatements prepared_;
  seeds::ReadTally* tally_ = nullptr;
  Observer* observer_ = &null_observer();
};

}  // namespace seedproxy::proxy
