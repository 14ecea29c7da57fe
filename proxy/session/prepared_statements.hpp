// What the client holds on the server as the proxy follows it: named statements (made by Parse
// or by SQL PREPARE) with the rewrite each was prepared with, portals, temporary tables, and one
// queue of the client's messages still to be answered, in order, so that every server message is
// known to answer one of them: the answers to what the proxy injected are dropped, an error's
// position is given back in the text the client sent, a statement's effect on this state counts
// once PostgreSQL completes it, and reads are counted per execution. Pure bookkeeping: no
// sockets, no snapshots.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/session/temp_tables.hpp"
#include "rewriter/splice/rewrite_cache.hpp"

namespace seedproxy::proxy {

// The rewrite a statement was prepared with: its reads are counted per Execute. Null: none.
using StatementRewrite = std::shared_ptr<const rewriter::CachedRewrite>;

// Where a text PostgreSQL received came from when it is not the client's: the text sent with the
// splice map that made it, and the client's own text, so a position PostgreSQL reports in the
// one is given back in the other. Empty for a text sent as the client wrote it.
struct Origin {
  StatementRewrite sent;  // its `sql` and `splices`
  std::shared_ptr<const std::string> client;
  explicit operator bool() const noexcept { return sent && client; }
};

struct Step;
using Steps = std::vector<Step>;

class PreparedStatements {
 public:
  // A statement the proxy follows: one whose text it rewrote, that reads a seed, that was made
  // by SQL PREPARE, or whose execution changes what the session holds (Steps).
  struct Statement {
    std::shared_ptr<const std::string> original;  // the client's text (SQL: its PREPARE)
    std::string parameter_types;           // the Parse body after the text, as the client sent it
    std::vector<std::string> search_path;  // in effect at Parse: a re-Parse resolves with it
    std::string sent;                      // the text PostgreSQL holds under this name
    std::uint64_t version = 0;             // the snapshot `sent` was rewritten for
    StatementRewrite rewrite;              // reads of `sent`
    std::shared_ptr<const Steps> steps;    // what executing it does (one step), or null
    bool sql = false;      // made by SQL PREPARE: re-prepared by DEALLOCATE and PREPARE
    bool held = true;      // sql: PostgreSQL holds a statement of this name (as answered so far)
    bool resend = false;   // PostgreSQL may not hold `sent`: the next use must re-prepare it
    std::uint64_t id = 0;  // assigned here: tells a statement from a later one of the same name
    // The text PostgreSQL runs, when it is not the client's.
    [[nodiscard]] Origin origin() const;
  };

  // What the server message that starts now answers, as far as the session must know.
  struct Answer {
    bool injected = false;      // a message the proxy injected: the client must not see it
    Origin origin;              // 'E', 'N': the text its position counts in
    StatementRewrite executed;  // 'C' of a SQL EXECUTE: the reads of the statement it ran
  };

  // ---- client messages, in the order they are forwarded ----
  // Parse. `tracked` is null for a statement the proxy does not follow. A statement of the same
  // name is replaced.
  void parse(std::string_view name, Statement* tracked);
  // Close ('S' statement or 'P' portal).
  void close(char kind, std::string_view name);
  void bind(std::string_view portal, std::string_view statement);
  void describe();
  // The rewrite whose reads an Execute of `portal` counts, once per Bind (a suspended portal
  // executed again is the same execution), or null.
  [[nodiscard]] StatementRewrite execute(std::string_view portal);
  // Sync ('S') or FunctionCall ('F'): each is answered by one ReadyForQuery.
  void batch_end(char type);
  // Query: answered up to its ReadyForQuery; `steps` are its statements, in order, when it has
  // any the session follows; `origin` is set when the text sent is not the client's.
  void query(Origin origin = {}, std::shared_ptr<const Steps> steps = {});
  // A named statement the proxy tracks, or null (Bind and Describe check its snapshot version).
  [[nodiscard]] Statement* find(std::string_view name);
  // The unnamed statement (empty when the proxy does not follow it).
  [[nodiscard]] const Statement& unnamed() const noexcept {
    return held_ ? held_->unnamed : no_statement_;
  }
  // The proxy sends Close(statement) and Parse(statement) right now, in that order, for a
  // tracked statement whose fields the caller has already updated to the new text.
  void reparse_sent(const Statement& statement);
  // The proxy sends, right now, Close(statement `name`) and the Parse, Bind, Execute, Close
  // (portal) and Close (statement) of its own statement `PREPARE name AS ...`, for a SQL
  // statement whose fields the caller has already updated to the new text.
  void reprepare_sent(const Statement& statement);

  // ---- server messages ----
  // The type of every server message as it starts, in order (DataRow may be left out).
  const Answer& server_started(char type);
  // What the message server_started saw last answers.
  [[nodiscard]] const Answer& answer() const noexcept { return answer_; }
  // CommandComplete's tag and ReadyForQuery's status, after server_started saw them start.
  void command_tag(std::string_view tag);
  void ready(char status);

  [[nodiscard]] const TempTables& temp_tables() const noexcept {
    return temp_ ? *temp_ : no_temp_tables_;
  }
  // Statements made by SQL PREPARE that the proxy follows (EXECUTE is looked for only then).
  [[nodiscard]] std::size_t sql_statements() const noexcept { return sql_statements_; }
  // True while a statement already sent may prepare or deallocate `name` (DEALLOCATE ALL and
  // DISCARD ALL: any name) and PostgreSQL has not answered it: an EXECUTE sent behind it must
  // not be given the followed statement's text again, it runs what that statement makes.
  [[nodiscard]] bool replacing(std::string_view name) const noexcept;

  // For tests and SHOW-style introspection.
  [[nodiscard]] std::size_t outstanding() const noexcept { return end_ - head_; }
  [[nodiscard]] std::size_t statements() const noexcept {
    return held_ ? held_->statements.size() : 0;
  }
  [[nodiscard]] std::size_t portals() const noexcept {
    return held_ ? held_->portals.size() + (held_->unnamed_portal.used() ? 1 : 0) : 0;
  }
  // Whether anything is held by name or as the unnamed statement or portal (allocated).
  [[nodiscard]] bool holds_any() const noexcept { return held_ != nullptr; }

 private:
  enum class Kind : std::uint8_t {
    client_parse,
    client_bind,
    client_describe,
    client_execute,
    client_close,
    injected_close,
    injected_parse,
    injected_bind,
    injected_execute,
    sync,
    simple
  };
  struct Entry {
    Entry(Kind kind_, std::uint64_t id_ = 0, Origin origin_ = {},
          std::shared_ptr<const Steps> steps_ = {})
        : kind(kind_), id(id_), origin(std::move(origin_)), steps(std::move(steps_)) {}
    Kind kind;
    std::uint64_t id = 0;                // the statement a Parse or Close concerns; 0: untracked
    Origin origin;                       // the text it runs, when not the client's
    std::shared_ptr<const Steps> steps;  // what it runs that the session follows
    std::uint32_t done = 0;              // steps completed so far
  };
  struct Portal {
    StatementRewrite rewrite;  // reads, counted at the first Execute
    Origin origin;
    std::shared_ptr<const Steps> steps;
    bool counted = false;
    std::uint64_t batch = 0;  // batches sent before its Bind: ends with that batch's transaction
    [[nodiscard]] bool used() const noexcept { return rewrite || origin || steps; }
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <class T>
  using NameMap = std::unordered_map<std::string, T, Hash, std::equal_to<>>;

  // The entry for a message sent now, a spare one when there is (its origin and steps empty).
  Entry& push(Kind kind, std::uint64_t id = 0);
  // The same with the text it runs and what it runs that the session follows, either empty.
  template <class O, class S>
  void push(Kind kind, std::uint64_t id, O&& origin, S&& steps);
  static constexpr std::uint32_t bit(Kind kind) noexcept {
    return std::uint32_t{1} << static_cast<unsigned>(kind);
  }
  [[nodiscard]] Entry* front() noexcept { return head_ < end_ ? &queue_[head_] : nullptr; }
  void pop() noexcept;
  // The entry answered by a message of one of `kinds` (bit(kind) for each), the front in step,
  // popped after those before it, which cannot be answered any more; false when none is waiting
  // before a batch end.
  bool answer(std::uint32_t kinds);
  // The front entry did not take effect (an error, or skipped after one).
  void failed(Entry& entry);
  void completed(const Step& step);
  void step_failed(const Step& step);
  void complete_next_step(Entry& entry);
  [[nodiscard]] Statement* find_id(std::uint64_t id);
  void erase(std::string_view name);
  void erase_portal(std::string_view name);
  // The unnamed portal's reset, testing before each release (most often there is nothing).
  static void clear(Portal& portal) noexcept;
  void end_portals();

  // The statements and portals the proxy follows. Allocated at the first one it must keep (a
  // tracked Parse, a Bind of one, a SQL PREPARE): a session that only sends simple Queries, or
  // statements the proxy has no reason to follow, carries none of it while it idles.
  struct Held {
    NameMap<Statement> statements;
    Statement unnamed;
    NameMap<Portal> portals;
    Portal unnamed_portal;
  };
  Held& held();
  std::unique_ptr<Held> held_;
  static const Statement no_statement_;  // the unnamed statement while nothing is held
  std::unique_ptr<TempTables> temp_;     // allocated at the first temporary relation
  inline static const TempTables no_temp_tables_{};
  std::size_t sql_statements_ = 0;
  // Outstanding client (and injected) messages and batch ends in send order, [head_, end_): a
  // vector used as a queue so steady traffic reuses its entries. Those from end_ on are spares
  // that hold no origin and no steps (pop() empties each).
  std::vector<Entry> queue_;
  std::size_t head_ = 0;
  std::size_t end_ = 0;
  Answer answer_;
  std::uint64_t next_id_ = 0;
  std::uint64_t batches_sent_ = 0;
  std::uint64_t batches_answered_ = 0;
  bool transaction_failed_ = false;  // an error or a ROLLBACK since the transaction began
};

// What one statement does to the state the proxy follows once PostgreSQL completes it (its
// CommandComplete); a statement that fails or is skipped does nothing, except that what the
// proxy injected must then be injected again.
struct Step {
  enum class Kind : std::uint8_t {
    none,                 // counted only, to know which statement a CommandComplete ends
    prepare,              // SQL PREPARE: `statement` is followed under `name`
    execute,              // SQL EXECUTE of `name`: the reads of that statement are counted
    deallocate,           // DEALLOCATE `name`
    deallocate_all,       // DEALLOCATE ALL
    discard_all,          // DISCARD ALL: statements, portals, temporary tables
    discard_temp,         // DISCARD TEMP
    create_temp,          // CREATE TEMP TABLE / VIEW `name`
    drop,                 // DROP TABLE / VIEW `names`
    injected_deallocate,  // the proxy's DEALLOCATE of `name` ahead of an EXECUTE
    injected_prepare,     // the proxy's PREPARE of `name`'s new text
  };
  Kind kind = Kind::none;
  std::string name;
  std::vector<std::string> names;
  bool on_commit_drop = false;
  std::shared_ptr<const PreparedStatements::Statement> statement;  // prepare
  std::uint64_t id = 0;  // injected_*: the statement re-prepared
};

}  // namespace seedproxy::proxy
