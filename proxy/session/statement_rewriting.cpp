// Query/Parse rewriting with a per-thread cache, search_path tracking, refusal error swapping,
// DDL notification, per-Execute read counting and re-Parse of stale prepared statements.
#include "proxy/session/statement_rewriting.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/sqlstate.hpp"
#include "proxy/observe/status_sources.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/body_reader.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "proxy/wire/messages.hpp"
#include "rewriter/splice/rewrite_cache.hpp"
#include "rewriter/statements/search_path.hpp"
#include "seeds/reads/read_tally.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::proxy {
namespace {

constexpr std::size_t max_pending_refusals = 64;

rewriter::RewriteCache& thread_cache() {
  thread_local rewriter::RewriteCache cache(4096, 16u << 20);
  return cache;
}

bool starts_with_ddl(std::string_view tag) {
  for (std::string_view verb : {"CREATE", "ALTER", "DROP", "IMPORT"})
    if (tag.substr(0, verb.size()) == verb) return true;
  return false;
}

}  // namespace

StatementRewriting::StatementRewriting(seeds::SnapshotSource& snapshots, std::string database,
                                       std::string user, std::size_t max_statement_bytes,
                                       std::optional<std::string> search_path)
    : snapshots_(snapshots),
      database_(std::move(database)),
      user_(std::move(user)),
      max_statement_bytes_(max_statement_bytes),
      default_search_path_{"$user", "public"} {
  if (search_path) default_search_path_ = rewriter::split_search_path(*search_path);
  search_path_ = default_search_path_;
  // The first session to a database starts following its registry; its statements wait
  // (bounded, like after DDL) for the first snapshot so seeds apply from the first statement.
  catalog_ticket_ = snapshots_.watch(database_);
}

bool StatementRewriting::catalog_pending() {
  if (catalog_ticket_ == 0) return false;
  if (!snapshots_.refreshed(database_, catalog_ticket_)) return true;
  catalog_ticket_ = 0;
  return false;
}

boost::asio::awaitable<void> StatementRewriting::wait_for_catalog(
    std::chrono::steady_clock::duration timeout) {
  if (!catalog_pending()) co_return;
  // Whether answered or not, the session goes on with the snapshot it has.
  const bool answered = co_await snapshots_.wait_refreshed(database_, catalog_ticket_, timeout);
  (void)answered;
}

std::vector<std::string> StatementRewriting::effective_search_path() const {
  auto path = local_search_path_ ? *local_search_path_ : search_path_;
  for (auto& schema : path)
    if (schema == "$user") schema = user_;
  return path;
}

void StatementRewriting::note_search_path(std::string_view sql) {
  const auto change = rewriter::search_path_change(sql);
  if (!change) return;
  const std::vector<std::string> value = change->reset ? default_search_path_ : change->schemas;
  if (change->local)
    local_search_path_ = value;
  else
    search_path_ = value;
}

StatementRewriting::Lookup StatementRewriting::lookup(std::string_view sql,
                                                      const std::vector<std::string>* path) {
  Lookup out;
  // Huge texts (bulk INSERTs) are not parsed: bounded effort per message.
  if (sql.size() > max_statement_bytes_) return out;
  const auto snapshot = snapshots_.current(database_);
  if (!snapshot) return out;
  out.version = snapshot->version;
  if (snapshot->seeds.empty() || !snapshot->seeds.might_apply(sql)) return out;
  const auto began =
      observing_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  out.path = path ? *path : effective_search_path();
  auto& cache = thread_cache();
  auto cached = cache.find(sql, snapshot->version, out.path);
  const bool cache_hit = cached != nullptr;
  if (!cached) {
    auto result = rewriter::rewrite({sql, snapshot->catalog, snapshot->seeds, out.path});
    auto entry = std::make_shared<rewriter::CachedRewrite>();
    entry->outcome = result.outcome;
    entry->sql = std::move(result.sql);
    entry->error = std::move(result.error);
    entry->refusal_marker = std::move(result.refusal_marker);
    for (const auto& read : result.reads)
      entry->reads.push_back({read.attribute->schema, read.attribute->table, read.attribute->name});
    cached = entry;
    cache.store(sql, snapshot->version, out.path, std::move(entry));
  }
  if (observing_)
    observer_->statement_rewritten(std::chrono::steady_clock::now() - began, cache_hit);
  out.rewrite = std::move(cached);
  return out;
}

const std::string* StatementRewriting::text_to_send(const rewriter::CachedRewrite& rewrite) {
  using Outcome = rewriter::RewriteResult::Outcome;
  if (rewrite.outcome == Outcome::unchanged) return nullptr;
  if (rewrite.outcome == Outcome::refused) {
    if (pending_refusals_.size() >= max_pending_refusals)
      pending_refusals_.erase(pending_refusals_.begin());
    pending_refusals_.emplace_back(rewrite.refusal_marker, rewrite.error);
  }
  return &rewrite.sql;
}

void StatementRewriting::count_reads(const rewriter::CachedRewrite& rewrite) {
  // One read per executed statement and attribute (docs/metrics.md).
  for (const auto& read : rewrite.reads) {
    if (observing_)
      observer_->attribute_read(database_, entity_label(read.schema, read.table), read.attribute);
    if (tally_) tally_->add(database_, read.schema, read.table, read.attribute);
  }
}

std::optional<std::vector<std::byte>> StatementRewriting::parse_message(protocol::Bytes body) {
  const auto parse = protocol::read_parse(body);
  if (!parse) return std::nullopt;
  const std::string_view name = parse->name;
  const std::string_view sql = parse->sql;
  note_search_path(sql);
  auto found = lookup(sql);
  using Outcome = rewriter::RewriteResult::Outcome;
  const bool tracked = found.rewrite && (found.rewrite->outcome != Outcome::unchanged ||
                                         !found.rewrite->reads.empty());
  const std::string* rewritten = found.rewrite ? text_to_send(*found.rewrite) : nullptr;
  if (!tracked) {
    prepared_.parse(name, nullptr);
  } else if (name.empty()) {
    PreparedStatements::Statement statement;
    statement.rewrite = found.rewrite;
    prepared_.parse(name, &statement);
  } else {
    PreparedStatements::Statement statement;
    statement.original = sql;
    statement.parameter_types = protocol::as_text(parse->parameter_types);
    statement.search_path = std::move(found.path);
    statement.sent = rewritten ? *rewritten : std::string(sql);
    statement.version = found.version;
    statement.rewrite = found.rewrite;
    prepared_.parse(name, &statement);
  }
  if (!rewritten) return std::nullopt;
  // Parameter type OIDs follow the text unchanged: numbering and types stay the client's.
  protocol::PacketWriter writer;
  writer.begin('P');
  writer.put_cstring(name);
  writer.put_cstring(*rewritten);
  writer.put_bytes(parse->parameter_types);
  writer.finish();
  return writer.take();
}

std::optional<std::vector<std::byte>> StatementRewriting::refresh(std::string_view name,
                                                                  protocol::Bytes message) {
  auto out = refresh(name);
  if (out) out->insert(out->end(), message.begin(), message.end());
  return out;
}

std::optional<std::vector<std::byte>> StatementRewriting::refresh(std::string_view name) {
  auto* statement = prepared_.find(name);
  if (!statement) return std::nullopt;
  if (!statement->resend) {
    const auto snapshot = snapshots_.current(database_);
    if (!snapshot || snapshot->version == statement->version) return std::nullopt;
  }
  // The seed snapshot changed since the statement was prepared (a phase moved, a seed came or
  // went): resolve the client's text again, as PostgreSQL re-plans it, with its search_path.
  auto found = lookup(statement->original, &statement->search_path);
  using Outcome = rewriter::RewriteResult::Outcome;
  const bool rewritten = found.rewrite && found.rewrite->outcome != Outcome::unchanged;
  const std::string_view text =
      rewritten ? std::string_view(found.rewrite->sql) : std::string_view(statement->original);
  if (found.version != 0) statement->version = found.version;
  statement->rewrite = found.rewrite;
  if (!statement->resend && text == statement->sent) return std::nullopt;
  if (rewritten) (void)text_to_send(*found.rewrite);  // remembers a refusal's marker
  statement->sent = text;
  statement->resend = false;
  prepared_.reparse_sent(*statement);
  // PostgreSQL drops the old plan with the Close; its answers to both are dropped on the way back
  // so the client sees exactly the answers to its own messages.
  protocol::PacketWriter writer;
  writer.begin('C');
  writer.put_u8('S');
  writer.put_cstring(name);
  writer.finish();
  writer.begin('P');
  writer.put_cstring(name);
  writer.put_cstring(statement->sent);
  writer.put_bytes(statement->parameter_types);
  writer.finish();
  return writer.take();
}

std::vector<std::byte> StatementRewriting::streamed_client_message(protocol::Bytes head) {
  const char type = static_cast<char>(head[0]);
  protocol::BodyReader reader(head.subspan(protocol::message_header_size));
  switch (type) {
    case 'Q':
    case 'S':
    case 'F':
      prepared_.batch_end(type);
      return {};
    case 'P':
      // PostgreSQL answers it as any Parse; the statement is the client's text, untracked.
      if (const auto name = reader.cstring()) prepared_.parse(*name, nullptr);
      return {};
    case 'B': {
      // A Bind carrying long parameter values: the names come first.
      const auto portal = reader.cstring();
      const auto statement = reader.cstring();
      if (!portal || !statement) return {};
      auto before = statement->empty() ? std::nullopt : refresh(*statement);
      prepared_.bind(*portal, *statement);
      return before ? std::move(*before) : std::vector<std::byte>{};
    }
    default:
      // Describe, Execute and Close are never this long unless malformed: as a malformed whole
      // message, no bookkeeping.
      return {};
  }
}

std::optional<std::vector<std::byte>> StatementRewriting::client_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  switch (type) {
    case 'Q': {
      const auto query = protocol::read_query(body);
      prepared_.batch_end('Q');
      if (!query) return std::nullopt;
      note_search_path(query->sql);
      if (const auto gone = deallocation(query->sql)) {
        if (gone->all)
          prepared_.deallocate_all();
        else
          prepared_.deallocate(gone->name);
      }
      const auto found = lookup(query->sql);
      if (!found.rewrite) return std::nullopt;
      // Simple protocol: the statement is executed now.
      count_reads(*found.rewrite);
      const std::string* rewritten = text_to_send(*found.rewrite);
      if (!rewritten) return std::nullopt;
      protocol::PacketWriter writer;
      writer.begin('Q');
      writer.put_cstring(*rewritten);
      writer.finish();
      return writer.take();
    }
    case 'P':
      return parse_message(body);
    case 'B': {
      const auto bind = protocol::read_bind(body);
      if (!bind) return std::nullopt;
      auto replacement = bind->statement.empty() ? std::nullopt : refresh(bind->statement, message);
      prepared_.bind(bind->portal, bind->statement);
      return replacement;
    }
    case 'D': {
      const auto describe = protocol::read_describe(body);
      if (!describe || describe->target != protocol::Target::statement || describe->name.empty())
        return std::nullopt;
      return refresh(describe->name, message);
    }
    case 'E': {
      const auto execute = protocol::read_execute(body);
      if (!execute) return std::nullopt;
      if (const auto executed = prepared_.execute(execute->portal)) count_reads(*executed);
      return std::nullopt;
    }
    case 'C': {
      const auto close = protocol::read_close(body);
      if (!close) return std::nullopt;
      prepared_.close(static_cast<char>(close->target), close->name);
      return std::nullopt;
    }
    case 'S':
    case 'F':
      prepared_.batch_end(type);
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

void StatementRewriting::note_replaced_client_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  if (type == 'Q') {
    prepared_.batch_end('Q');
  } else if (type == 'P') {
    if (const auto parse = protocol::read_parse(body)) prepared_.parse(parse->name, nullptr);
  }
}

bool StatementRewriting::drop_server_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  char status = 'I';
  if (type == 'Z')
    if (const auto ready =
            protocol::read_ready_for_query(message.subspan(protocol::message_header_size)))
      status = static_cast<char>(*ready);
  return prepared_.server_message(type, status);
}

std::optional<std::vector<std::byte>> StatementRewriting::server_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  if (type == 'Z') {
    // The transaction ended: SET LOCAL is undone.
    if (protocol::read_ready_for_query(body) == protocol::TransactionStatus::idle)
      local_search_path_.reset();
    return std::nullopt;
  }
  if (type == 'C') {
    if (const auto tag = protocol::read_command_tag(body); tag && starts_with_ddl(*tag))
      catalog_ticket_ = snapshots_.request_refresh(database_);
    return std::nullopt;
  }
  if (type != 'E' || pending_refusals_.empty()) return std::nullopt;
  const auto fields = protocol::read_error_notice(body);
  if (!fields) return std::nullopt;
  const std::string_view code = fields->code;
  const std::string_view text = fields->message;
  if (code != sqlstate::undefined_column ||
      text.find(rewriter::refusal_marker_prefix) == std::string_view::npos)
    return std::nullopt;
  const auto match = std::find_if(pending_refusals_.begin(), pending_refusals_.end(),
                                  [&](const auto& p) { return text.find(p.first) != text.npos; });
  if (match == pending_refusals_.end()) return std::nullopt;
  const rewriter::SqlError error = std::move(match->second);
  pending_refusals_.erase(match);
  return protocol::error_response({.code = error.sqlstate,
                                   .message = error.message,
                                   .detail = error.detail,
                                   .hint = {},
                                   .position = error.position});
}

}  // namespace seedproxy::proxy
