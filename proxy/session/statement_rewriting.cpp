// Query/Parse rewriting with a per-thread cache, search_path and temporary-table tracking, refusal
// error swapping, error positions given back, DDL notification, read counting per execution and
// re-preparation of stale prepared statements (Parse or SQL PREPARE).
#include "proxy/session/statement_rewriting.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>

#include "common/identifiers.hpp"
#include "common/log.hpp"
#include "common/sqlstate.hpp"
#include "proxy/observe/status_sources.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/body_reader.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "proxy/wire/messages.hpp"
#include "rewriter/splice/rewrite_cache.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "rewriter/statements/search_path.hpp"
#include "seeds/reads/read_tally.hpp"
#include "seeds/registry/predicted_snapshot.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::proxy {
namespace {

constexpr std::size_t max_pending_refusals = 64;
using Outcome = rewriter::RewriteResult::Outcome;
using TextKind = rewriter::SessionStatement::Kind;

rewriter::RewriteCache& thread_cache() {
  thread_local rewriter::RewriteCache cache(4096, 16u << 20);
  return cache;
}

// A session that waited for a refresh its expired lease needed waits again a second later at the
// earliest; in between, statements that touch seeds are refused at once.
constexpr auto trust_wait_interval = std::chrono::seconds(1);

// Whether a CommandComplete tag may be one the session follows: a catalog change (CREATE, ALTER,
// DROP, IMPORT, DO, CALL), COMMIT or ROLLBACK.
bool follows_command_tag(std::string_view tag) noexcept {
  if (tag.empty()) return false;
  switch (tag.front()) {
    case 'A':
    case 'C':
    case 'D':
    case 'I':
    case 'R':
      return true;
    default:
      return false;
  }
}

// Some seed of the snapshot is live but did not compile (its table is missing, say): DDL may make
// it compile, so any statement could touch it.
bool has_uncompiled_seeds(const seeds::DatabaseSnapshot& snapshot) {
  const auto live = std::count_if(
      snapshot.statuses.begin(), snapshot.statuses.end(),
      [](const auto& status) { return status.phase != rewriter::Phase::rolled_back; });
  return static_cast<std::size_t>(live) > snapshot.seeds.attributes().size();
}

}  // namespace

StatementRewriting::StatementRewriting(seeds::SnapshotSource& snapshots, std::string database,
                                       std::string user, std::size_t max_statement_bytes,
                                       std::optional<std::string> search_path)
    : snapshots_(snapshots),
      database_(std::move(database)),
      user_(std::move(user)),
      max_statement_bytes_(max_statement_bytes) {
  if (search_path)
    default_search_path_ =
        std::make_unique<const std::vector<std::string>>(rewriter::split_search_path(*search_path));
  // The first session to a database starts following its registry; its statements wait
  // (bounded, like after DDL) for the first snapshot so seeds apply from the first statement.
  catalog_ticket_ = snapshots_.watch(database_);
  first_load_ = catalog_ticket_ != 0;
}

StatementRewriting::~StatementRewriting() { snapshots_.unwatch(database_); }

const std::vector<std::string>& StatementRewriting::default_search_path() const {
  static const std::vector<std::string> postgres_default{"$user", "public"};
  return default_search_path_ ? *default_search_path_ : postgres_default;
}

const std::vector<std::string>& StatementRewriting::session_search_path() const {
  return search_path_ ? *search_path_ : default_search_path();
}

bool StatementRewriting::catalog_pending() {
  if (catalog_ticket_ == 0) return false;
  if (!snapshots_.refreshed(database_, catalog_ticket_)) return true;
  catalog_ticket_ = 0;
  first_load_ = false;
  predicted_.reset();  // the refresh is published: it holds what the session predicted
  return false;
}

std::shared_ptr<const seeds::DatabaseSnapshot> StatementRewriting::current_snapshot() {
  if (predicted_ && catalog_pending()) return predicted_;
  return snapshots_.current(database_);
}

bool StatementRewriting::must_wait(protocol::Bytes buffered, bool at_boundary) {
  bool pending = catalog_pending();
  if (pending && first_load_) return true;
  // The session's own committed ALTER TABLE is in its predicted view: nothing to wait for.
  if (pending && predicted_) pending = false;
  // The common case, with one look-up of the database: no refresh outstanding, a fresh lease.
  if (!pending &&
      (catalog_ticket_ == 0 ? snapshots_.settled(database_) : snapshots_.trusted(database_)))
    return false;
  // Another session's DDL whose refresh is not published yet: a statement that began after that
  // DDL completed must see it, as it would straight against PostgreSQL.
  const std::uint64_t others = catalog_ticket_ == 0 ? snapshots_.outstanding(database_) : 0;
  // Statements that cannot involve a seed go on at once: a DDL migration never waits.
  if (at_boundary && !touches_seeds(buffered)) return false;
  if (pending) return true;
  if (others != 0) {
    catalog_ticket_ = others;
    return true;
  }
  // This proxy's lease ran out: refresh before serving seeds, or (lookup) refuse them.
  const auto now = std::chrono::steady_clock::now();
  if (now - last_trust_wait_ < trust_wait_interval) return false;
  last_trust_wait_ = now;
  catalog_ticket_ = snapshots_.request_refresh(database_);
  return catalog_ticket_ != 0;
}

bool StatementRewriting::touches_seeds(protocol::Bytes buffered) {
  const auto snapshot = current_snapshot();
  if (!snapshot || !snapshot->active) return false;
  const bool uncompiled = has_uncompiled_seeds(*snapshot);
  // A text whose statements the rewriter leaves as sent (a migration's CREATE, ALTER and DROP,
  // even of the seeded table) does not wait for the refresh the DDL before it asked for.
  const auto may_apply = [&](std::string_view sql) {
    if (!uncompiled && !snapshot->seeds.might_apply(sql)) return false;
    return sql.size() > max_statement_bytes_ || rewriter::depends_on_catalog(sql);
  };
  protocol::Bytes rest = buffered;
  for (;;) {
    const auto frame = protocol::decode_message(rest, protocol::default_max_message_length);
    if (frame.status != protocol::Status::frame) return false;  // the rest is not here yet
    const auto& message = frame.message;
    switch (message.header.type) {
      case 'Q':
        if (const auto query = protocol::read_query(message.body); query && may_apply(query->sql))
          return true;
        break;
      case 'P':
        if (const auto parse = protocol::read_parse(message.body); parse && may_apply(parse->sql))
          return true;
        break;
      case 'B':
        if (const auto bind = protocol::read_bind(message.body);
            bind && !bind->statement.empty() && prepared_.find(bind->statement))
          return true;
        break;
      case 'D':
        if (const auto describe = protocol::read_describe(message.body);
            describe && describe->target == protocol::Target::statement &&
            prepared_.find(describe->name))
          return true;
        break;
      default:
        break;
    }
    rest = rest.subspan(message.header.total());
  }
}

StatementRewrite StatementRewriting::stale_refusal() {
  const auto trust = snapshots_.trust(database_);
  auto refusal = std::make_shared<rewriter::CachedRewrite>();
  refusal->outcome = rewriter::RewriteResult::Outcome::refused;
  refusal->refusal_marker =
      std::string(rewriter::refusal_marker_prefix) + "stale " + std::to_string(++stale_refusals_);
  std::string cause = trust.seconds_untrusted > 0
                          ? "its lease there ran out " +
                                log::seconds_text(trust.seconds_untrusted) +
                                " ago without a successful refresh"
                          : "it has not confirmed it since it began following the database";
  if (!trust.why.empty()) cause += " (" + trust.why + ")";
  refusal->error = {sqlstate::object_not_in_prerequisite_state,
                    "seedproxy cannot serve a statement that involves a seed: its copy of the "
                    "seed registry of database \"" +
                        database_ + "\" may be out of date, because " + cause,
                    "The statement is refused rather than answered with a shape other proxies may "
                    "have moved past. Statements without seeds are served as usual; this one is "
                    "served again once this proxy reaches the registry.",
                    0};
  refusal->sql = rewriter::refusal_statement(refusal->refusal_marker, refusal->error);
  return refusal;
}

void StatementRewriting::note_catalog_effect(std::string_view sql,
                                             const rewriter::StatementClues& clues,
                                             const seeds::DatabaseSnapshot* snapshot) {
  // A text too large to read is judged by its CommandComplete tag instead.
  if (sql.size() > max_statement_bytes_ || !clues.catalog_change) return;
  if (!snapshot || !snapshot->active) return;  // without seeds, DDL changes nothing that matters
  ddl_text_seen_ = true;
  const bool first = !sent_effect_ || (sent_effect_->empty() && !sent_effect_->prediction);
  auto effect = rewriter::catalog_effect(sql);
  // Predicted only when this statement alone runs in its own transaction (autocommit): then the
  // ReadyForQuery after its CommandComplete says it committed.
  prediction_armed_ =
      first && awaiting_ready_ == 0 && transaction_status_ == 'I' && effect.prediction;
  if (!sent_effect_) sent_effect_ = std::make_unique<rewriter::CatalogEffect>();
  sent_effect_->merge(effect);
}

void StatementRewriting::note_rewritten_ddl(const Lookup& found) {
  // What runs is not the text the prediction was read from (a seed's ADD COLUMN IF NOT EXISTS
  // left out, a refusal): the refresh alone tells what it did.
  if (found.rewrite && found.rewrite->outcome != Outcome::unchanged) prediction_armed_ = false;
}

void StatementRewriting::ddl_done(bool idle) {
  ddl_text_seen_ = false;
  const bool committed = idle && prediction_armed_ && prediction_completed_;
  prediction_armed_ = false;
  prediction_completed_ = false;
  // Inside a transaction the change is not visible to the registry connection yet: asked for
  // once it is committed (or rolled back, which costs one refresh).
  if (!idle || !sent_effect_ || sent_effect_->empty()) return;
  auto view = committed && sent_effect_->prediction ? predict(*sent_effect_->prediction) : nullptr;
  if (const auto ticket = snapshots_.request_refresh(database_, *sent_effect_, view != nullptr))
    catalog_ticket_ = ticket;
  // Without a view, statements that may involve a seed wait for the refresh.
  predicted_ = catalog_ticket_ != 0 ? std::move(view) : nullptr;
  sent_effect_.reset();
}

std::shared_ptr<const seeds::DatabaseSnapshot> StatementRewriting::predict(
    const rewriter::CatalogPrediction& prediction) {
  if (first_load_ || !snapshots_.trusted(database_)) return nullptr;
  // The snapshot to build on must hold every DDL before this one: not when another session's
  // refresh is outstanding, nor when this session's own last DDL went unpredicted and its
  // refresh is not published (the database's snapshot is then behind this session).
  const std::uint64_t others = snapshots_.outstanding(database_);
  if (others != 0 && others != catalog_ticket_) return nullptr;
  if (!predicted_ && catalog_pending()) return nullptr;
  const auto base = current_snapshot();
  if (!base || !base->active) return nullptr;
  // A temporary table of that name would be the one altered (pg_temp comes first).
  const auto& temps = prepared_.temp_tables().names();
  if (prediction.schema.empty() &&
      std::find(temps.begin(), temps.end(), prediction.relation) != temps.end())
    return nullptr;
  return seeds::predicted_snapshot(*base, prediction, effective_search_path(),
                                   snapshots_.next_version());
}

boost::asio::awaitable<void> StatementRewriting::wait_for_catalog(
    std::chrono::steady_clock::duration timeout) {
  if (!catalog_pending()) co_return;
  // Whether answered or not, the session goes on with the snapshot it has.
  const bool answered = co_await snapshots_.wait_refreshed(database_, catalog_ticket_, timeout);
  (void)answered;
}

std::vector<std::string> StatementRewriting::effective_search_path() const {
  auto path = local_search_path_ ? *local_search_path_ : session_search_path();
  for (auto& schema : path)
    if (schema == "$user") schema = user_;
  return path;
}

bool StatementRewriting::reads_statements(const seeds::DatabaseSnapshot* snapshot) const noexcept {
  return (snapshot && (snapshot->active || !snapshot->seeds.empty())) ||
         prepared_.statements() > 0 || !prepared_.temp_tables().names().empty() ||
         local_search_path_ || search_path_;
}

std::optional<rewriter::StatementClues> StatementRewriting::clues_of(
    std::string_view sql, const seeds::DatabaseSnapshot* snapshot) {
  if (reads_statements(snapshot)) {
    const auto clues = rewriter::statement_clues(sql);
    note_search_path(sql, clues);
    return clues;
  }
  // Only a search_path change can matter (a seed may come later and resolve names with it):
  // the search for that clue alone, a tenth of the whole pass.
  rewriter::StatementClues clues;
  clues.search_path = rewriter::search_path_clue(sql);
  note_search_path(sql, clues);
  // A SET search_path just gave the session a setting a DISCARD ALL of the same text resets.
  if (!reads_statements(snapshot)) return std::nullopt;
  return rewriter::statement_clues(sql);
}

void StatementRewriting::note_search_path(std::string_view sql,
                                          const rewriter::StatementClues& clues) {
  if (!clues.search_path) return;
  const auto change = rewriter::search_path_change(sql);
  if (!change) return;
  auto value = std::make_unique<const std::vector<std::string>>(
      change->reset ? default_search_path() : change->schemas);
  (change->local ? local_search_path_ : search_path_) = std::move(value);
}

void StatementRewriting::reset_search_path() {
  search_path_.reset();
  local_search_path_.reset();
}

StatementRewriting::Lookup StatementRewriting::lookup(std::string_view sql,
                                                      const seeds::DatabaseSnapshot* snapshot,
                                                      const std::vector<std::string>* path) {
  Lookup out;
  // Huge texts (bulk INSERTs) are not parsed: bounded effort per message.
  if (sql.size() > max_statement_bytes_) return out;
  if (!snapshot) return out;
  out.version = snapshot->version;
  if (snapshot->seeds.empty() || !snapshot->seeds.might_apply(sql)) return out;
  if (!snapshots_.trusted(database_)) {
    out.rewrite = stale_refusal();
    return out;
  }
  const auto began =
      observing_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  out.path = path ? *path : effective_search_path();
  // Only temporary relations that hide a relation of the catalog change a rewrite (and the key).
  const auto temps = prepared_.temp_tables().names().empty()
                         ? std::vector<std::string>{}
                         : shadowing(snapshot->catalog, out.path);
  auto& cache = thread_cache();
  auto probe = rewriter::RewriteCache::probe(sql, snapshot->version, out.path, temps);
  auto cached = cache.find(probe, sql);
  const bool cache_hit = cached != nullptr;
  if (!cached) {
    auto result = rewriter::rewrite({sql, snapshot->catalog, snapshot->seeds, out.path, temps});
    auto entry = std::make_shared<rewriter::CachedRewrite>();
    entry->outcome = result.outcome;
    entry->sql = std::move(result.sql);
    entry->error = std::move(result.error);
    entry->refusal_marker = std::move(result.refusal_marker);
    entry->splices = std::move(result.splices);
    for (const auto& read : result.reads)
      entry->reads.push_back({read.attribute->schema, read.attribute->table, read.attribute->name});
    cached = entry;
    cache.store(probe, sql, std::move(entry), result.value_constants);
  }
  if (observing_)
    observer_->statement_rewritten(std::chrono::steady_clock::now() - began, cache_hit);
  out.rewrite = std::move(cached);
  return out;
}

const std::string* StatementRewriting::text_to_send(const rewriter::CachedRewrite& rewrite) {
  if (rewrite.outcome == Outcome::unchanged) return nullptr;
  if (rewrite.outcome == Outcome::refused) {
    if (!pending_refusals_) pending_refusals_ = std::make_unique<PendingRefusals>();
    auto& pending = *pending_refusals_;
    if (pending.size() >= max_pending_refusals) pending.erase(pending.begin());
    pending.emplace_back(rewrite.refusal_marker, rewrite.error);
  }
  return &rewrite.sql;
}

void StatementRewriting::count_reads(const rewriter::CachedRewrite& rewrite,
                                     const std::vector<rewriter::CachedRewrite::Read>* except) {
  // One read per executed statement and attribute (docs/metrics.md); a PREPARE's reads count at
  // each EXECUTE, not when it is prepared.
  std::vector<bool> excused(except ? except->size() : 0, false);
  for (const auto& read : rewrite.reads) {
    if (except) {
      std::size_t i = 0;
      for (; i < except->size(); ++i) {
        const auto& other = (*except)[i];
        if (!excused[i] && other.schema == read.schema && other.table == read.table &&
            other.attribute == read.attribute)
          break;
      }
      if (i < except->size()) {
        excused[i] = true;
        continue;
      }
    }
    if (observing_)
      observer_->attribute_read(database_, entity_label(read.schema, read.table), read.attribute);
    if (tally_) tally_->add(database_, read.schema, read.table, read.attribute);
  }
}

std::optional<std::vector<std::byte>> StatementRewriting::query_message(protocol::Bytes body) {
  const auto query = protocol::read_query(body);
  if (!query) {
    prepared_.query();
    return std::nullopt;
  }
  const std::string_view sql = query->sql;
  const auto snapshot = current_snapshot();
  const auto clues = clues_of(sql, snapshot.get());
  if (!clues) {
    prepared_.query();  // run as sent, nothing in it followed
    return std::nullopt;
  }
  note_catalog_effect(sql, *clues, snapshot.get());
  const auto found = lookup(sql, snapshot.get());
  note_rewritten_ddl(found);
  Planned planned;
  if (const auto statements = statements_of(sql, *clues, found.rewrite != nullptr)) {
    planned.steps = std::make_shared<Steps>();
    for (const auto& statement : *statements) {
      // DISCARD ALL resets every setting, search_path included (as RESET ALL).
      if (statement.kind == TextKind::discard_all) reset_search_path();
      plan(sql, statement, true, planned);
    }
    if (std::all_of(planned.steps->begin(), planned.steps->end(),
                    [](const Step& s) { return s.kind == Step::Kind::none; }))
      planned.steps.reset();
  }
  // Simple protocol: the statement is executed now.
  if (found.rewrite) count_reads(*found.rewrite, &planned.prepared_reads);
  const std::string* rewritten = found.rewrite ? text_to_send(*found.rewrite) : nullptr;
  Origin origin;
  if (!planned.insertions.empty()) {
    origin.sent = compose(sql, found.rewrite.get(), planned.insertions);
    rewritten = &origin.sent->sql;
  } else if (rewritten) {
    origin.sent = found.rewrite;
  }
  if (rewritten) origin.client = std::make_shared<const std::string>(sql);
  prepared_.query(std::move(origin), std::move(planned.steps));
  if (!rewritten) return std::nullopt;
  return protocol::query_message(*rewritten);
}

std::optional<std::vector<std::byte>> StatementRewriting::parse_message(protocol::Bytes body) {
  const auto parse = protocol::read_parse(body);
  if (!parse) return std::nullopt;
  const std::string_view name = parse->name;
  const std::string_view sql = parse->sql;
  const auto snapshot = current_snapshot();
  const auto clues = clues_of(sql, snapshot.get());
  if (!clues) {
    prepared_.parse(name, nullptr);  // prepared as sent, untracked
    return std::nullopt;
  }
  note_catalog_effect(sql, *clues, snapshot.get());
  auto found = lookup(sql, snapshot.get());
  note_rewritten_ddl(found);
  Planned planned;
  if (const auto statements = statements_of(sql, *clues, found.rewrite != nullptr);
      statements && statements->size() == 1) {
    planned.steps = std::make_shared<Steps>();
    plan(sql, statements->front(), false, planned);
    if (planned.steps->front().kind == Step::Kind::none) planned.steps.reset();
  }
  const bool tracked = (found.rewrite && (found.rewrite->outcome != Outcome::unchanged ||
                                          !found.rewrite->reads.empty())) ||
                       planned.steps;
  const std::string* rewritten = found.rewrite ? text_to_send(*found.rewrite) : nullptr;
  if (!tracked) {
    prepared_.parse(name, nullptr);
  } else {
    PreparedStatements::Statement statement;
    statement.original = std::make_shared<const std::string>(sql);
    statement.parameter_types = protocol::as_text(parse->parameter_types);
    statement.search_path = std::move(found.path);
    statement.sent = rewritten ? *rewritten : std::string(sql);
    statement.version = found.version;
    statement.rewrite = found.rewrite;
    statement.steps = std::move(planned.steps);
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

std::vector<std::byte> StatementRewriting::streamed_client_message(protocol::Bytes head) {
  const char type = static_cast<char>(head[0]);
  protocol::BodyReader reader(head.subspan(protocol::message_header_size));
  if (type == 'Q' || type == 'P' || type == 'F') prediction_armed_ = false;
  if (type == 'Q' || type == 'S' || type == 'F') ++awaiting_ready_;
  switch (type) {
    case 'Q':
      // Too long to rewrite or read for session statements: answered as the client's own text.
      prepared_.query();
      return {};
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
      auto before = refresh(*statement, {});
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
  // A statement after the one predicted, before its ReadyForQuery, voids the prediction (it may
  // share its transaction); this one may arm its own.
  if (type == 'Q' || type == 'P' || type == 'F') prediction_armed_ = false;
  switch (type) {
    case 'Q': {
      auto replacement = query_message(body);
      ++awaiting_ready_;
      return replacement;
    }
    case 'P':
      return parse_message(body);
    case 'B': {
      const auto bind = protocol::read_bind(body);
      if (!bind) return std::nullopt;
      auto replacement = refresh(bind->statement, message);
      prepared_.bind(bind->portal, bind->statement);
      return replacement;
    }
    case 'D': {
      const auto describe = protocol::read_describe(body);
      std::optional<std::vector<std::byte>> replacement;
      if (describe && describe->target == protocol::Target::statement && !describe->name.empty())
        replacement = refresh(describe->name, message);
      prepared_.describe();
      return replacement;
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
      ++awaiting_ready_;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

void StatementRewriting::note_replaced_client_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  prediction_armed_ = false;
  if (type == 'Q') ++awaiting_ready_;
  if (type == 'Q') {
    prepared_.query();
  } else if (type == 'P') {
    if (const auto parse = protocol::read_parse(body)) prepared_.parse(parse->name, nullptr);
  }
}

void StatementRewriting::server_started(char type) {
  switch (type) {
    case '1':
    case '2':
    case '3':
    case 'T':
    case 'n':
    case 'C':
    case 'I':
    case 's':
    case 'E':
    case 'N':
    case 'Z':
      // A SQL EXECUTE's reads count when PostgreSQL completes it.
      if (const auto& executed = prepared_.server_started(type).executed) count_reads(*executed);
      break;
    default:
      break;
  }
}

std::optional<std::vector<std::byte>> StatementRewriting::swap_refusal(protocol::Bytes message) {
  if (!pending_refusals_ || pending_refusals_->empty()) return std::nullopt;
  auto& pending = *pending_refusals_;
  const auto fields = protocol::read_error_notice(message.subspan(protocol::message_header_size));
  if (!fields) return std::nullopt;
  const std::string_view code = fields->code;
  const std::string_view text = fields->message;
  if (code != sqlstate::undefined_column ||
      text.find(rewriter::refusal_marker_prefix) == std::string_view::npos)
    return std::nullopt;
  const auto match = std::find_if(pending.begin(), pending.end(),
                                  [&](const auto& p) { return text.find(p.first) != text.npos; });
  if (match == pending.end()) return std::nullopt;
  const rewriter::SqlError error = std::move(match->second);
  pending.erase(match);
  return protocol::error_response({.code = error.sqlstate,
                                   .message = error.message,
                                   .detail = error.detail,
                                   .hint = {},
                                   .position = error.position});
}

std::optional<std::vector<std::byte>> StatementRewriting::map_position(protocol::Bytes message) {
  const auto& answer = prepared_.answer();
  if (!answer.injected && !answer.origin) return std::nullopt;
  const auto fields = protocol::read_error_notice(message.subspan(protocol::message_header_size));
  if (!fields || fields->position.empty()) return std::nullopt;
  // A position in a text the proxy put in is none of the client's.
  if (answer.injected) return protocol::with_position(message, std::nullopt);
  int position = 0;
  const auto digits = fields->position;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), position);
  if (error != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  const auto& origin = answer.origin;
  const auto mapped =
      rewriter::client_position(origin.sent->splices, *origin.client, origin.sent->sql, position);
  if (mapped == position) return std::nullopt;
  return protocol::with_position(message, mapped);
}

std::optional<std::vector<std::byte>> StatementRewriting::server_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  const auto body = message.subspan(protocol::message_header_size);
  switch (type) {
    case '1':
    case '2':
    case '3':
      if (prepared_.answer().injected) return std::vector<std::byte>{};
      return std::nullopt;
    case 'C': {
      if (prepared_.answer().injected) return std::vector<std::byte>{};
      const auto tag = protocol::read_command_tag(body);
      if (!tag) return std::nullopt;
      // Only DDL's tags, COMMIT and ROLLBACK are followed: SELECT, UPDATE, FETCH... are told apart
      // by their first letter (catalog_command_tag, PreparedStatements::command_tag).
      if (!follows_command_tag(*tag)) return std::nullopt;
      // DDL whose text was not read (too large, or a statement prepared earlier): not bounded.
      if (!ddl_text_seen_ && rewriter::catalog_command_tag(*tag)) {
        if (const auto snapshot = current_snapshot(); snapshot && snapshot->active) {
          if (!sent_effect_) sent_effect_ = std::make_unique<rewriter::CatalogEffect>();
          sent_effect_->everything = true;
        }
      }
      if (*tag == "ALTER TABLE") prediction_completed_ = true;
      prepared_.command_tag(*tag);
      return std::nullopt;
    }
    case 'Z':
      if (const auto status = protocol::read_ready_for_query(body)) {
        // The transaction ended: SET LOCAL is undone.
        const bool idle = *status == protocol::TransactionStatus::idle;
        if (idle) local_search_path_.reset();
        if (awaiting_ready_ > 0) --awaiting_ready_;
        ddl_done(idle);
        transaction_status_ = static_cast<char>(*status);
        prepared_.ready(static_cast<char>(*status));
      }
      return std::nullopt;
    case 'E':
      prediction_armed_ = false;  // the statement, or its implicit transaction, failed
      if (auto swapped = swap_refusal(message)) return swapped;
      return map_position(message);
    case 'N':
      return map_position(message);
    default:
      return std::nullopt;
  }
}

}  // namespace seedproxy::proxy
