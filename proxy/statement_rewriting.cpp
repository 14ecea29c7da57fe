// Query/Parse rewriting with a per-thread cache, search_path tracking, refusal error swapping
// and DDL notification.
#include "proxy/statement_rewriting.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "proxy/messages.hpp"
#include "proxy/status_sources.hpp"
#include "rewriter/rewrite_cache.hpp"
#include "rewriter/search_path.hpp"
#include "rewriter/sql_text.hpp"
#include "seeds/snapshots.hpp"

namespace seedproxy::proxy {
namespace {

constexpr std::size_t max_pending_refusals = 64;

rewriter::RewriteCache& thread_cache() {
  thread_local rewriter::RewriteCache cache(4096, 16u << 20);
  return cache;
}

std::string_view as_text(protocol::Bytes bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// The NUL-terminated string at the front of `bytes`, or nullopt when unterminated.
std::optional<std::string_view> cstring_at(protocol::Bytes bytes) {
  const auto text = as_text(bytes);
  const auto nul = text.find('\0');
  if (nul == std::string_view::npos) return std::nullopt;
  return text.substr(0, nul);
}

bool starts_with_ddl(std::string_view tag) {
  for (std::string_view verb : {"CREATE", "ALTER", "DROP", "IMPORT"})
    if (tag.substr(0, verb.size()) == verb) return true;
  return false;
}

}  // namespace

StatementRewriting::StatementRewriting(seeds::SnapshotRegistry& snapshots, std::string database,
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

std::optional<std::string> StatementRewriting::rewrite_text(std::string_view sql) {
  // Huge texts (bulk INSERTs) are not parsed: bounded effort per message.
  if (sql.size() > max_statement_bytes_) return std::nullopt;
  const auto snapshot = snapshots_.current(database_);
  if (!snapshot || snapshot->seeds.empty() || !snapshot->seeds.might_apply(sql))
    return std::nullopt;
  const auto began =
      observing_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const auto path = effective_search_path();
  auto& cache = thread_cache();
  auto cached = cache.find(sql, snapshot->version, path);
  const bool cache_hit = cached != nullptr;
  if (!cached) {
    auto result = rewriter::rewrite({sql, snapshot->catalog, snapshot->seeds, path});
    auto entry = std::make_shared<rewriter::CachedRewrite>();
    entry->outcome = result.outcome;
    entry->sql = std::move(result.sql);
    entry->error = std::move(result.error);
    entry->refusal_marker = std::move(result.refusal_marker);
    for (const auto& read : result.reads)
      entry->reads.push_back({read.attribute->schema, read.attribute->table, read.attribute->name});
    cached = entry;
    cache.store(sql, snapshot->version, path, std::move(entry));
  }
  if (observing_) {
    observer_->statement_rewritten(std::chrono::steady_clock::now() - began, cache_hit);
    // A read is counted when the text is sent: per statement for Query, per Parse for the
    // extended protocol (see docs/metrics.md).
    for (const auto& read : cached->reads)
      observer_->attribute_read(database_, entity_label(read.schema, read.table), read.attribute);
  }
  using Outcome = rewriter::RewriteResult::Outcome;
  if (cached->outcome == Outcome::unchanged) return std::nullopt;
  if (cached->outcome == Outcome::refused) {
    if (pending_refusals_.size() >= max_pending_refusals)
      pending_refusals_.erase(pending_refusals_.begin());
    pending_refusals_.emplace_back(cached->refusal_marker, cached->error);
  }
  return cached->sql;
}

std::optional<std::vector<std::byte>> StatementRewriting::client_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  protocol::PacketWriter writer;
  if (type == 'Q') {
    const auto sql = cstring_at(body);
    if (!sql) return std::nullopt;
    note_search_path(*sql);
    auto rewritten = rewrite_text(*sql);
    if (!rewritten) return std::nullopt;
    writer.begin('Q');
    writer.put_cstring(*rewritten);
  } else if (type == 'P') {
    const auto name = cstring_at(body);
    if (!name) return std::nullopt;
    const auto sql = cstring_at(body.subspan(name->size() + 1));
    if (!sql) return std::nullopt;
    note_search_path(*sql);
    auto rewritten = rewrite_text(*sql);
    if (!rewritten) return std::nullopt;
    // Parameter type OIDs follow the text unchanged: numbering and types stay the client's.
    const auto rest = body.subspan(name->size() + 1 + sql->size() + 1);
    writer.begin('P');
    writer.put_cstring(*name);
    writer.put_cstring(*rewritten);
    writer.put_bytes(as_text(rest));
  } else {
    return std::nullopt;
  }
  writer.finish();
  return writer.take();
}

std::optional<std::vector<std::byte>> StatementRewriting::server_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  if (type == 'Z') {
    if (!body.empty() && static_cast<char>(body[0]) == 'I') local_search_path_.reset();
    return std::nullopt;
  }
  if (type == 'C') {
    if (const auto tag = cstring_at(body); tag && starts_with_ddl(*tag))
      catalog_ticket_ = snapshots_.request_refresh(database_);
    return std::nullopt;
  }
  if (type != 'E' || pending_refusals_.empty()) return std::nullopt;
  std::string_view code;
  std::string_view text;
  for (std::size_t at = 0; at < body.size() && body[at] != std::byte{0};) {
    const char field = static_cast<char>(body[at]);
    const auto value = cstring_at(body.subspan(at + 1));
    if (!value) return std::nullopt;
    if (field == 'C') code = *value;
    if (field == 'M') text = *value;
    at += 1 + value->size() + 1;
  }
  if (code != "42703" || text.find(rewriter::refusal_marker_prefix) == std::string_view::npos)
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
