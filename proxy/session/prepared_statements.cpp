// Bookkeeping of the client's prepared statements, portals and temporary tables, and of the queue
// of client messages waiting for their answers.
#include "proxy/session/prepared_statements.hpp"

#include <algorithm>
#include <utility>

namespace seedproxy::proxy {
namespace {

using StepKind = Step::Kind;

bool injected_step(const Step& step) {
  return step.kind == StepKind::injected_deallocate || step.kind == StepKind::injected_prepare;
}

}  // namespace

Origin PreparedStatements::Statement::origin() const {
  using Outcome = rewriter::RewriteResult::Outcome;
  if (!rewrite || rewrite->outcome == Outcome::unchanged || !original) return {};
  return {rewrite, original};
}

PreparedStatements::Entry& PreparedStatements::push(Kind kind, std::uint64_t id) {
  // Compact now and then so a client that never lets the queue drain keeps it bounded.
  if (head_ >= 1024 && head_ * 2 >= end_) {
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    end_ -= head_;
    head_ = 0;
  }
  if (end_ == queue_.size()) {
    queue_.emplace_back(kind, id);
    return queue_[end_++];
  }
  // A spare entry, emptied by pop(): no origin, no steps.
  Entry& entry = queue_[end_++];
  entry.kind = kind;
  entry.id = id;
  entry.done = 0;
  return entry;
}

template <class O, class S>
void PreparedStatements::push(Kind kind, std::uint64_t id, O&& origin, S&& steps) {
  Entry& entry = push(kind, id);
  // Most messages run the client's own text and nothing followed: nothing to copy.
  if (origin.sent || origin.client) entry.origin = std::forward<O>(origin);
  if (steps) entry.steps = std::forward<S>(steps);
}

void PreparedStatements::pop() noexcept {
  Entry& entry = queue_[head_];
  if (entry.kind == Kind::sync || entry.kind == Kind::simple) ++batches_answered_;
  // Most entries hold none of these: tested first, each reset costs no call.
  if (entry.origin.sent) entry.origin.sent.reset();
  if (entry.origin.client) entry.origin.client.reset();
  if (entry.steps) entry.steps.reset();
  if (++head_ == end_) {
    head_ = 0;  // the entries stay, empty, for the next messages
    end_ = 0;
  }
}

const PreparedStatements::Statement PreparedStatements::no_statement_{};

PreparedStatements::Held& PreparedStatements::held() {
  if (!held_) held_ = std::make_unique<Held>();
  return *held_;
}

PreparedStatements::Statement* PreparedStatements::find(std::string_view name) {
  if (!held_ || held_->statements.empty()) return nullptr;
  const auto it = held_->statements.find(name);
  return it == held_->statements.end() ? nullptr : &it->second;
}

PreparedStatements::Statement* PreparedStatements::find_id(std::uint64_t id) {
  if (id == 0 || !held_) return nullptr;
  for (auto& [name, statement] : held_->statements)
    if (statement.id == id) return &statement;
  return nullptr;
}

void PreparedStatements::erase(std::string_view name) {
  if (!held_ || held_->statements.empty()) return;
  const auto it = held_->statements.find(name);
  if (it == held_->statements.end()) return;
  if (it->second.sql) --sql_statements_;
  held_->statements.erase(it);
}

void PreparedStatements::parse(std::string_view name, Statement* tracked) {
  const std::uint64_t id = ++next_id_;
  if (name.empty()) {
    // PostgreSQL drops the previous unnamed statement before parsing the new one. An untracked
    // one needs nothing held: an empty unnamed statement is what no Held means.
    if (!tracked && !held_) {
      push(Kind::client_parse, id);
      return;
    }
    Statement& unnamed = held().unnamed;
    if (tracked)
      unnamed = std::move(*tracked);
    else if (unnamed.id != 0)  // 0: already the empty statement (see query())
      unnamed = {};
    unnamed.id = id;
    push(Kind::client_parse, id, unnamed.origin(), nullptr);
    return;
  }
  // Whatever PostgreSQL holds under this name afterwards is not the tracked text any more.
  erase(name);
  if (!tracked) {
    push(Kind::client_parse, 0);
    return;
  }
  tracked->id = id;
  Origin origin = tracked->origin();
  held().statements.insert_or_assign(std::string(name), std::move(*tracked));
  push(Kind::client_parse, id, std::move(origin), nullptr);
}

void PreparedStatements::close(char kind, std::string_view name) {
  push(Kind::client_close);
  if (!held_) return;
  if (kind == 'S') {
    if (name.empty())
      held_->unnamed = {};
    else
      erase(name);
  } else if (kind == 'P') {
    if (name.empty())
      held_->unnamed_portal = {};
    else
      erase_portal(name);
  }
}

void PreparedStatements::bind(std::string_view portal, std::string_view statement) {
  Portal bound;
  const Statement* from = statement.empty() ? (held_ ? &held_->unnamed : nullptr) : find(statement);
  if (from) {
    // A PREPARE's reads count at each EXECUTE of what it prepares, not when it runs.
    const bool prepares = from->steps && from->steps->front().kind == StepKind::prepare;
    if (from->rewrite && !from->rewrite->reads.empty() && !prepares) bound.rewrite = from->rewrite;
    bound.origin = from->origin();
    bound.steps = from->steps;
  }
  bound.batch = batches_sent_;
  push(Kind::client_bind, 0, bound.origin, nullptr);
  if (portal.empty()) {
    if (held_ || bound.used()) held().unnamed_portal = std::move(bound);
  } else if (bound.used()) {
    held().portals.insert_or_assign(std::string(portal), std::move(bound));
  } else {
    erase_portal(portal);
  }
}

void PreparedStatements::describe() { push(Kind::client_describe); }

StatementRewrite PreparedStatements::execute(std::string_view portal) {
  Portal* run = nullptr;
  if (held_ && portal.empty()) {
    run = &held_->unnamed_portal;
  } else if (held_ && !held_->portals.empty()) {
    const auto it = held_->portals.find(portal);
    if (it != held_->portals.end()) run = &it->second;
  }
  if (!run) {
    push(Kind::client_execute);
    return {};
  }
  push(Kind::client_execute, 0, run->origin, run->steps);
  if (run->counted) return {};
  run->counted = true;
  return run->rewrite;
}

void PreparedStatements::batch_end(char type) {
  push(type == 'S' ? Kind::sync : Kind::simple);
  ++batches_sent_;
}

void PreparedStatements::query(Origin origin, std::shared_ptr<const Steps> steps) {
  push(Kind::simple, 0, std::move(origin), std::move(steps));
  ++batches_sent_;
  // A simple Query drops the unnamed statement and runs in the unnamed portal. (An id of 0: the
  // statement is already the empty one, which most Queries find.)
  if (!held_) return;
  if (held_->unnamed.id != 0) held_->unnamed = {};
  clear(held_->unnamed_portal);
}

void PreparedStatements::reparse_sent(const Statement& statement) {
  push(Kind::injected_close, statement.id);
  push(Kind::injected_parse, statement.id, statement.origin(), nullptr);
}

void PreparedStatements::reprepare_sent(const Statement& statement) {
  auto steps = std::make_shared<Steps>(1);
  steps->front().kind = StepKind::injected_prepare;
  steps->front().id = statement.id;
  push(Kind::injected_close, statement.id);
  push(Kind::injected_parse);
  push(Kind::injected_bind);
  push(Kind::injected_execute, 0, Origin{}, std::move(steps));
  push(Kind::injected_close);
  push(Kind::injected_close);
}

void PreparedStatements::completed(const Step& step) {
  switch (step.kind) {
    case StepKind::none:
      break;
    case StepKind::prepare: {
      erase(step.name);
      Statement statement = *step.statement;
      statement.id = ++next_id_;
      statement.sql = true;
      statement.held = true;
      held().statements.insert_or_assign(step.name, std::move(statement));
      ++sql_statements_;
      break;
    }
    case StepKind::execute:
      if (const auto* executed = find(step.name);
          executed && executed->rewrite && !executed->rewrite->reads.empty())
        answer_.executed = executed->rewrite;
      break;
    case StepKind::deallocate:
      erase(step.name);
      break;
    case StepKind::discard_all:
      if (held_) held_->portals.clear();
      if (temp_) temp_->dropped_all();
      [[fallthrough]];
    case StepKind::deallocate_all:
      if (held_) held_->statements.clear();
      sql_statements_ = 0;
      break;
    case StepKind::discard_temp:
      if (temp_) temp_->dropped_all();
      break;
    case StepKind::create_temp:
      if (!temp_) temp_ = std::make_unique<TempTables>();
      temp_->created(step.name, step.on_commit_drop);
      break;
    case StepKind::drop:
      if (temp_)
        for (const auto& name : step.names) temp_->dropped(name);
      break;
    case StepKind::injected_deallocate:
      if (auto* statement = find_id(step.id)) statement->held = false;
      break;
    case StepKind::injected_prepare:
      if (auto* statement = find_id(step.id)) statement->held = true;
      break;
  }
}

void PreparedStatements::step_failed(const Step& step) {
  // PostgreSQL may still hold the old text (or none): the next use re-prepares.
  if (injected_step(step))
    if (auto* statement = find_id(step.id)) statement->resend = true;
}

bool PreparedStatements::replacing(std::string_view name) const noexcept {
  // Scanned only when a statement is about to be prepared again: rare, and the queue is short.
  for (std::size_t at = head_; at < end_; ++at) {
    const Entry& entry = queue_[at];
    if (!entry.steps) continue;
    for (std::size_t i = entry.done; i < entry.steps->size(); ++i) {
      const Step& step = (*entry.steps)[i];
      if (step.kind == StepKind::deallocate_all || step.kind == StepKind::discard_all) return true;
      if ((step.kind == StepKind::prepare || step.kind == StepKind::deallocate) &&
          step.name == name)
        return true;
    }
  }
  return false;
}

void PreparedStatements::complete_next_step(Entry& entry) {
  if (!entry.steps || entry.done >= entry.steps->size()) return;
  const Step& step = (*entry.steps)[entry.done++];
  if (injected_step(step)) answer_.injected = true;
  completed(step);
}

void PreparedStatements::failed(Entry& entry) {
  switch (entry.kind) {
    case Kind::client_parse:
      // PostgreSQL holds no statement made by this Parse.
      if (entry.id == 0 || !held_) return;
      if (entry.id == held_->unnamed.id) {
        held_->unnamed = {};
        return;
      }
      for (auto it = held_->statements.begin(); it != held_->statements.end(); ++it)
        if (it->second.id == entry.id) {
          erase(it->first);
          return;
        }
      return;
    case Kind::injected_parse:
      // The statement is stale still (or gone, when the injected Close took effect).
      if (auto* statement = find_id(entry.id)) statement->resend = true;
      return;
    case Kind::client_execute:
    case Kind::injected_execute:
    case Kind::simple:
      if (entry.steps)
        for (; entry.done < entry.steps->size(); ++entry.done)
          step_failed((*entry.steps)[entry.done]);
      return;
    default:
      return;
  }
}

void PreparedStatements::clear(Portal& portal) noexcept {
  if (portal.rewrite) portal.rewrite.reset();
  if (portal.origin.sent || portal.origin.client) portal.origin = {};
  if (portal.steps) portal.steps.reset();
  portal.counted = false;
  portal.batch = 0;
}

void PreparedStatements::erase_portal(std::string_view name) {
  if (!held_ || held_->portals.empty()) return;
  if (const auto it = held_->portals.find(name); it != held_->portals.end())
    held_->portals.erase(it);
}

void PreparedStatements::end_portals() {
  if (!held_) return;
  if (held_->unnamed_portal.batch < batches_answered_) clear(held_->unnamed_portal);
  auto& portals = held_->portals;
  if (portals.empty()) return;
  for (auto it = portals.begin(); it != portals.end();)
    it = it->second.batch < batches_answered_ ? portals.erase(it) : std::next(it);
}

bool PreparedStatements::answer(std::uint32_t kinds) {
  const auto wanted = [&](Kind kind) { return (kinds & bit(kind)) != 0; };
  constexpr std::uint32_t batch_ends = bit(Kind::sync) | bit(Kind::simple);
  // In step, the front entry is the message this answers. Look no further than the batch end
  // in case the queue is out of step with the server (then nothing is popped).
  std::size_t at = head_;
  while (at < end_ && !wanted(queue_[at].kind) && !(bit(queue_[at].kind) & batch_ends)) ++at;
  if (at == end_ || !wanted(queue_[at].kind)) return false;
  while (head_ < at) {
    failed(queue_[head_]);  // touches no entry of the queue: done before the pop
    pop();
  }
  return true;
}

const PreparedStatements::Answer& PreparedStatements::server_started(char type) {
  answer_.injected = false;
  if (answer_.origin.sent || answer_.origin.client) answer_.origin = {};
  if (answer_.executed) answer_.executed.reset();
  Entry* entry = front();
  switch (type) {
    case '1':
    case '2':
    case '3': {
      const Kind client = type == '1'   ? Kind::client_parse
                          : type == '2' ? Kind::client_bind
                                        : Kind::client_close;
      const Kind injected = type == '1'   ? Kind::injected_parse
                            : type == '2' ? Kind::injected_bind
                                          : Kind::injected_close;
      if (!answer(bit(client) | bit(injected))) break;
      entry = front();
      answer_.injected = entry->kind == injected;
      if (auto* statement = answer_.injected ? find_id(entry->id) : nullptr) {
        if (type == '1') statement->resend = false;
        if (type == '3') statement->held = false;
      }
      pop();
      break;
    }
    case 'T':
    case 'n':
      // A Describe's RowDescription or NoData ('t', ParameterDescription, comes before it).
      if (entry && entry->kind == Kind::client_describe) pop();
      break;
    case 'C':
    case 'I':
    case 's':
      if (!answer(bit(Kind::client_execute) | bit(Kind::injected_execute) | bit(Kind::simple)))
        break;
      entry = front();
      answer_.injected = entry->kind == Kind::injected_execute;
      if (type == 'C') complete_next_step(*entry);
      // A Query goes on to its ReadyForQuery; an Execute is answered.
      if (entry->kind != Kind::simple) pop();
      break;
    case 'E':
    case 'N':
      if (!entry) break;
      // A re-Parse runs the client's text or its rewrite: its origin says which.
      answer_.origin = entry->origin;
      answer_.injected = entry->kind == Kind::injected_close ||
                         entry->kind == Kind::injected_bind ||
                         entry->kind == Kind::injected_execute ||
                         (entry->steps && entry->done < entry->steps->size() &&
                          injected_step((*entry->steps)[entry->done]));
      if (type == 'N') break;
      transaction_failed_ = true;
      if (entry->kind == Kind::simple) {
        // A Query's error ends it: its later statements never run; its ReadyForQuery follows.
        failed(*entry);
        break;
      }
      // Extended protocol: PostgreSQL skips every message up to the next Sync, a Query included.
      while ((entry = front()) && entry->kind != Kind::sync) {
        failed(*entry);
        pop();
      }
      break;
    case 'Z':
      while ((entry = front())) {
        const Kind kind = entry->kind;
        // Out of step, anything before a batch end cannot be answered any more.
        failed(*entry);
        pop();
        if (kind == Kind::sync || kind == Kind::simple) break;
      }
      break;
    default:
      break;
  }
  return answer_;
}

void PreparedStatements::command_tag(std::string_view tag) {
  if (tag == "COMMIT") {
    if (temp_) temp_->transaction_ended(true);
    transaction_failed_ = false;
  } else if (tag == "ROLLBACK") {
    // ROLLBACK, COMMIT of a failed transaction, or ROLLBACK TO SAVEPOINT (not told apart).
    transaction_failed_ = true;
  }
}

void PreparedStatements::ready(char status) {
  if (status == 'I') {
    // The transaction ended: by an implicit commit unless an error or a ROLLBACK ended it.
    if (temp_) temp_->transaction_ended(!transaction_failed_);
    transaction_failed_ = false;
  }
  if (status != 'T') end_portals();
}

}  // namespace seedproxy::proxy
