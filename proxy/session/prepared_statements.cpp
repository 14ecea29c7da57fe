// Bookkeeping of the client's prepared statements and portals, and of the queue of client
// messages waiting for their answers.
#include "proxy/session/prepared_statements.hpp"

#include <algorithm>
#include <utility>

#include "common/text.hpp"

namespace seedproxy::proxy {
namespace {

// The words of a short utility statement: keywords and unquoted names folded to lower case,
// quoted names as written; comments and whitespace skipped. False on anything else.
bool words_of(std::string_view sql, std::vector<std::string>& words) {
  std::size_t at = 0;
  while (at < sql.size()) {
    const char c = sql[at];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      ++at;
    } else if (sql.substr(at, 2) == "--") {
      const auto end = sql.find('\n', at);
      at = end == std::string_view::npos ? sql.size() : end + 1;
    } else if (sql.substr(at, 2) == "/*") {
      const auto end = sql.find("*/", at + 2);
      if (end == std::string_view::npos) return false;
      at = end + 2;
    } else if (c == ';') {
      // Only a trailing semicolon: a second statement is not recognised.
      ++at;
      while (at < sql.size() &&
             (sql[at] == ' ' || sql[at] == '\n' || sql[at] == '\t' || sql[at] == '\r'))
        ++at;
      return at == sql.size();
    } else if (c == '"') {
      std::string word;
      for (++at;; ++at) {
        if (at >= sql.size()) return false;
        if (sql[at] == '"') {
          if (at + 1 < sql.size() && sql[at + 1] == '"') {
            word += '"';
            ++at;
            continue;
          }
          ++at;
          break;
        }
        word += sql[at];
      }
      words.push_back(std::move(word));
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
               static_cast<unsigned char>(c) >= 0x80) {
      std::string word;
      while (at < sql.size() &&
             ((sql[at] >= 'a' && sql[at] <= 'z') || (sql[at] >= 'A' && sql[at] <= 'Z') ||
              (sql[at] >= '0' && sql[at] <= '9') || sql[at] == '_' || sql[at] == '$' ||
              static_cast<unsigned char>(sql[at]) >= 0x80))
        word += text::ascii_lower(sql[at++]);
      // An unquoted word is a keyword or a folded name; mark it so "ALL" quoted stays a name.
      words.push_back("\x01" + word);
    } else {
      return false;
    }
    if (words.size() > 3) return false;
  }
  return true;
}

}  // namespace

std::optional<Deallocation> deallocation(std::string_view sql) {
  // Cheap test first: most Queries are not one of these.
  if (sql.size() > 512) return std::nullopt;
  std::size_t first = 0;
  while (first < sql.size() &&
         (sql[first] == ' ' || sql[first] == '\n' || sql[first] == '\t' || sql[first] == '\r'))
    ++first;
  const char c = first < sql.size() ? sql[first] : '\0';
  if (c != 'd' && c != 'D' && c != '/' && c != '-') return std::nullopt;
  std::vector<std::string> words;
  if (!words_of(sql, words) || words.empty()) return std::nullopt;
  const auto keyword = [&](std::size_t i, std::string_view word) {
    return i < words.size() && words[i].size() == word.size() + 1 && words[i][0] == '\x01' &&
           std::string_view(words[i]).substr(1) == word;
  };
  const auto name = [&](std::size_t i) {
    return words[i][0] == '\x01' ? words[i].substr(1) : words[i];
  };
  if (keyword(0, "discard") && keyword(1, "all") && words.size() == 2)
    return Deallocation{true, {}};
  if (!keyword(0, "deallocate")) return std::nullopt;
  std::size_t at = keyword(1, "prepare") && words.size() == 3 ? 2 : 1;
  if (words.size() != at + 1) return std::nullopt;
  if (keyword(at, "all")) return Deallocation{true, {}};
  return Deallocation{false, name(at)};
}

Origin PreparedStatements::Statement::origin() const {
  using Outcome = rewriter::RewriteResult::Outcome;
  if (!rewrite || rewrite->outcome == Outcome::unchanged || !original) return {};
  return {rewrite, original};
}

void PreparedStatements::push(Entry entry) {
  // Compact now and then so a client that never lets the queue drain keeps it bounded.
  if (head_ >= 1024 && head_ * 2 >= queue_.size()) {
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    head_ = 0;
  }
  queue_.push_back(std::move(entry));
}

void PreparedStatements::pop() noexcept {
  Entry& entry = queue_[head_];
  if (entry.kind == Kind::sync || entry.kind == Kind::simple) ++batches_answered_;
  entry.origin = {};
  if (++head_ == queue_.size()) {
    queue_.clear();  // keeps the capacity
    head_ = 0;
  }
}

PreparedStatements::Statement* PreparedStatements::find(std::string_view name) {
  if (statements_.empty()) return nullptr;
  const auto it = statements_.find(name);
  return it == statements_.end() ? nullptr : &it->second;
}

PreparedStatements::Statement* PreparedStatements::find_id(std::uint64_t id) {
  if (id == 0) return nullptr;
  for (auto& [name, statement] : statements_)
    if (statement.id == id) return &statement;
  return nullptr;
}

void PreparedStatements::erase(std::string_view name) {
  if (statements_.empty()) return;
  if (const auto it = statements_.find(name); it != statements_.end()) statements_.erase(it);
}

void PreparedStatements::parse(std::string_view name, Statement* tracked) {
  const std::uint64_t id = ++next_id_;
  if (name.empty()) {
    // PostgreSQL drops the previous unnamed statement before parsing the new one.
    unnamed_ = tracked ? std::move(*tracked) : Statement{};
    unnamed_.id = id;
    push({Kind::client_parse, id, unnamed_.origin()});
    return;
  }
  // Whatever PostgreSQL holds under this name afterwards is not the tracked text any more.
  erase(name);
  if (!tracked) {
    push({Kind::client_parse, 0});
    return;
  }
  tracked->id = id;
  Origin origin = tracked->origin();
  statements_.insert_or_assign(std::string(name), std::move(*tracked));
  push({Kind::client_parse, id, std::move(origin)});
}

void PreparedStatements::close(char kind, std::string_view name) {
  push({Kind::client_close});
  if (kind == 'S') {
    if (name.empty())
      unnamed_ = {};
    else
      erase(name);
  } else if (kind == 'P') {
    if (name.empty())
      unnamed_portal_ = {};
    else if (!portals_.empty())
      if (const auto it = portals_.find(name); it != portals_.end()) portals_.erase(it);
  }
}

void PreparedStatements::bind(std::string_view portal, std::string_view statement) {
  Portal bound;
  if (const Statement* from = statement.empty() ? &unnamed_ : find(statement)) {
    if (from->rewrite && !from->rewrite->reads.empty()) bound.rewrite = from->rewrite;
    bound.origin = from->origin();
  }
  bound.batch = batches_sent_;
  push({Kind::client_bind, 0, bound.origin});
  if (portal.empty()) {
    unnamed_portal_ = std::move(bound);
  } else if (bound.used()) {
    portals_.insert_or_assign(std::string(portal), std::move(bound));
  } else if (!portals_.empty()) {
    if (const auto it = portals_.find(portal); it != portals_.end()) portals_.erase(it);
  }
}

void PreparedStatements::describe() { push({Kind::client_describe}); }

StatementRewrite PreparedStatements::execute(std::string_view portal) {
  Portal* run = nullptr;
  if (portal.empty()) {
    run = &unnamed_portal_;
  } else if (!portals_.empty()) {
    if (const auto it = portals_.find(portal); it != portals_.end()) run = &it->second;
  }
  if (!run) {
    push({Kind::client_execute});
    return {};
  }
  push({Kind::client_execute, 0, run->origin});
  if (run->counted) return {};
  run->counted = true;
  return run->rewrite;
}

void PreparedStatements::batch_end(char type) {
  push({type == 'S' ? Kind::sync : Kind::simple});
  ++batches_sent_;
}

void PreparedStatements::query(Origin origin) {
  push({Kind::simple, 0, std::move(origin)});
  ++batches_sent_;
  // A simple Query drops the unnamed statement and runs in the unnamed portal.
  unnamed_ = {};
  unnamed_portal_ = {};
}

void PreparedStatements::reparse_sent(const Statement& statement) {
  push({Kind::injected_close, statement.id});
  push({Kind::injected_parse, statement.id, statement.origin()});
}

void PreparedStatements::deallocate(std::string_view name) { erase(name); }

void PreparedStatements::deallocate_all() { statements_.clear(); }

void PreparedStatements::failed(const Entry& entry) {
  if (entry.kind == Kind::client_parse) {
    // PostgreSQL holds no statement made by this Parse.
    if (entry.id == 0) return;
    if (entry.id == unnamed_.id) {
      unnamed_ = {};
      return;
    }
    for (auto it = statements_.begin(); it != statements_.end(); ++it)
      if (it->second.id == entry.id) {
        statements_.erase(it);
        return;
      }
  } else if (entry.kind == Kind::injected_parse) {
    // The statement is stale still (or gone, when the injected Close took effect).
    if (auto* statement = find_id(entry.id)) statement->resend = true;
  }
}

void PreparedStatements::end_portals() {
  if (unnamed_portal_.batch < batches_answered_) unnamed_portal_ = {};
  for (auto it = portals_.begin(); it != portals_.end();)
    it = it->second.batch < batches_answered_ ? portals_.erase(it) : std::next(it);
}

bool PreparedStatements::answer(std::initializer_list<Kind> kinds) {
  const auto wanted = [&](Kind kind) {
    return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  };
  // In step, the front entry is the message this answers. Look no further than the batch end
  // in case the queue is out of step with the server (then nothing is popped).
  std::size_t at = head_;
  while (at < queue_.size() && !wanted(queue_[at].kind) && queue_[at].kind != Kind::sync &&
         queue_[at].kind != Kind::simple)
    ++at;
  if (at == queue_.size() || !wanted(queue_[at].kind)) return false;
  while (head_ < at) {
    const Entry skipped = std::move(queue_[head_]);
    pop();
    failed(skipped);
  }
  return true;
}

const PreparedStatements::Answer& PreparedStatements::server_started(char type) {
  answer_ = {};
  Entry* entry = front();
  switch (type) {
    case '1':
    case '3': {
      const Kind client = type == '1' ? Kind::client_parse : Kind::client_close;
      const Kind injected = type == '1' ? Kind::injected_parse : Kind::injected_close;
      if (!answer({client, injected})) break;
      entry = front();
      answer_.injected = entry->kind == injected;
      if (type == '1' && answer_.injected)
        if (auto* statement = find_id(entry->id)) statement->resend = false;
      pop();
      break;
    }
    case '2':
      if (answer({Kind::client_bind})) pop();
      break;
    case 'T':
    case 'n':
      // A Describe's RowDescription or NoData ('t', ParameterDescription, comes before it).
      if (entry && entry->kind == Kind::client_describe) pop();
      break;
    case 'C':
    case 'I':
    case 's':
      // An Execute is answered; a Query goes on to its ReadyForQuery.
      if (answer({Kind::client_execute, Kind::simple}) && front()->kind != Kind::simple) pop();
      break;
    case 'E':
    case 'N':
      if (!entry) break;
      // A re-Parse runs the client's text or its rewrite: its origin says which.
      answer_.origin = entry->origin;
      answer_.injected = entry->kind == Kind::injected_close;
      // A Query's error ends it at its own ReadyForQuery; a notice changes nothing.
      if (type == 'N' || entry->kind == Kind::simple) break;
      // Extended protocol: PostgreSQL skips every message up to the next Sync, a Query included.
      while ((entry = front()) && entry->kind != Kind::sync) {
        const Entry skipped = std::move(*entry);
        pop();
        failed(skipped);
      }
      break;
    case 'Z':
      while ((entry = front())) {
        const Entry popped = std::move(*entry);
        pop();
        if (popped.kind == Kind::sync || popped.kind == Kind::simple) break;
        failed(popped);  // out of step: nothing before a batch end can still be answered
      }
      break;
    default:
      break;
  }
  return answer_;
}

void PreparedStatements::ready(char status) {
  if (status != 'T') end_portals();
}

}  // namespace seedproxy::proxy
