// The client's server-side prepared statements and portals as the proxy tracks them: which ones
// read seeds (read counting per Execute), which rewrite a named statement was prepared with, and
// one queue of the client's messages still to be answered, in order, so that every server message
// is known to answer one of them: the answers to a re-Parse the proxy injected are dropped, and an
// error's position is given back in the text the client sent. Pure bookkeeping: no sockets, no
// snapshots.
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

// What a Query that is one `DEALLOCATE [PREPARE] name`, `DEALLOCATE [PREPARE] ALL` or
// `DISCARD ALL` statement drops (names folded as PostgreSQL does), or nullopt for anything else.
struct Deallocation {
  bool all = false;
  std::string name;
};
[[nodiscard]] std::optional<Deallocation> deallocation(std::string_view sql);

class PreparedStatements {
 public:
  // A named statement whose text the proxy rewrote or that reads a seed.
  struct Statement {
    std::shared_ptr<const std::string> original;  // the client's text
    std::string parameter_types;           // the Parse body after the text, as the client sent it
    std::vector<std::string> search_path;  // in effect at Parse: a re-Parse resolves with it
    std::string sent;                      // the text PostgreSQL holds under this name
    std::uint64_t version = 0;             // the snapshot `sent` was rewritten for
    StatementRewrite rewrite;              // reads of `sent`
    bool resend = false;   // PostgreSQL may not hold `sent`: the next Bind must re-Parse it
    std::uint64_t id = 0;  // assigned here: tells a statement from a later one of the same name
    // The text PostgreSQL runs, when it is not the client's.
    [[nodiscard]] Origin origin() const;
  };

  // What the server message that starts now answers, as far as the session must know.
  struct Answer {
    bool injected = false;  // a message the proxy injected: the client must not see it
    Origin origin;          // 'E', 'N': the text its position counts in
  };

  // ---- client messages, in the order they are forwarded ----
  // Parse. `tracked` is null for a statement the proxy does not track. A statement of the same
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
  // Query: answered up to its ReadyForQuery; `origin` is set when the text sent is not the
  // client's.
  void query(Origin origin = {});
  // A named statement the proxy tracks, or null (Bind and Describe check its snapshot version).
  [[nodiscard]] Statement* find(std::string_view name);
  // The proxy sends Close(statement) and Parse(statement) right now, in that order, for a
  // tracked statement whose fields the caller has already updated to the new text.
  void reparse_sent(const Statement& statement);
  // DEALLOCATE name / DEALLOCATE ALL / DISCARD ALL through a Query.
  void deallocate(std::string_view name);
  void deallocate_all();

  // ---- server messages ----
  // The type of every server message as it starts, in order (DataRow may be left out).
  const Answer& server_started(char type);
  // What the message server_started saw last answers.
  [[nodiscard]] const Answer& answer() const noexcept { return answer_; }
  // ReadyForQuery's status, after server_started saw it start.
  void ready(char status);

  // For tests and SHOW-style introspection.
  [[nodiscard]] std::size_t outstanding() const noexcept { return queue_.size() - head_; }
  [[nodiscard]] std::size_t statements() const noexcept { return statements_.size(); }
  [[nodiscard]] std::size_t portals() const noexcept {
    return portals_.size() + (unnamed_portal_.used() ? 1 : 0);
  }

 private:
  enum class Kind : std::uint8_t {
    client_parse,
    client_bind,
    client_describe,
    client_execute,
    client_close,
    injected_close,
    injected_parse,
    sync,
    simple
  };
  struct Entry {
    Entry(Kind kind_, std::uint64_t id_ = 0, Origin origin_ = {})
        : kind(kind_), id(id_), origin(std::move(origin_)) {}
    Kind kind;
    std::uint64_t id = 0;  // the statement a Parse made or re-made; 0: untracked
    Origin origin;         // the text it runs, when not the client's
  };
  struct Portal {
    StatementRewrite rewrite;  // reads, counted at the first Execute
    Origin origin;
    bool counted = false;
    std::uint64_t batch = 0;  // batches sent before its Bind: ends with that batch's transaction
    [[nodiscard]] bool used() const noexcept { return rewrite || origin; }
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <class T>
  using NameMap = std::unordered_map<std::string, T, Hash, std::equal_to<>>;

  void push(Entry entry);
  [[nodiscard]] Entry* front() noexcept { return head_ < queue_.size() ? &queue_[head_] : nullptr; }
  void pop() noexcept;
  // The entry answered by a message of one of `kinds` (the front, in step), popped after those
  // before it, which cannot be answered any more; false when none is waiting before a batch end.
  bool answer(std::initializer_list<Kind> kinds);
  // The front entry did not take effect (an error, or skipped after one).
  void failed(const Entry& entry);
  [[nodiscard]] Statement* find_id(std::uint64_t id);
  void erase(std::string_view name);
  void end_portals();

  NameMap<Statement> statements_;
  Statement unnamed_;
  NameMap<Portal> portals_;
  Portal unnamed_portal_;
  // Outstanding client (and injected) messages and batch ends in send order; a vector used as a
  // queue so steady traffic reuses its capacity.
  std::vector<Entry> queue_;
  std::size_t head_ = 0;
  Answer answer_;
  std::uint64_t next_id_ = 0;
  std::uint64_t batches_sent_ = 0;
  std::uint64_t batches_answered_ = 0;
};

}  // namespace seedproxy::proxy
