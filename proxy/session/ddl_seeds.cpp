// DDL seeds, the session's side: recognising the statement, waiting for the control thread's
// verdict, and the stand-in statements whose answers PostgreSQL gives in its place.
#include "proxy/session/ddl_seeds.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/identifiers.hpp"
#include "common/sqlstate.hpp"
#include "common/text.hpp"
#include "proxy/session/statement_rewriting.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "proxy/wire/messages.hpp"
#include "rewriter/statements/generated_column_ddl.hpp"
#include "seeds/registry/snapshot_source.hpp"

namespace seedproxy::proxy {
namespace {

namespace asio = boost::asio;

// Stand-in names are unique in the process, so a notice or an error is matched exactly.
std::atomic<std::uint64_t> next_stand_in{1};

bool mentions_generated(std::string_view sql) {
  constexpr std::string_view word = "generated";
  return text::contains_ignoring_case(sql, word);
}

}  // namespace

DdlSeeds::DdlSeeds(seeds::SnapshotSource& snapshots, std::string database,
                   std::size_t max_statement_bytes)
    : snapshots_(snapshots),
      database_(std::move(database)),
      max_statement_bytes_(max_statement_bytes) {}

bool DdlSeeds::verdict_pending() const noexcept {
  return job_ && !timed_out_ && !job_->done.done();
}

asio::awaitable<void> DdlSeeds::wait() {
  if (!verdict_pending()) co_return;
  const auto timeout = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(timeout_seconds));
  // Keeps the job alive across the wait whatever happens to job_ meanwhile.
  const auto job = job_;
  const bool answered = co_await job->done.wait(timeout);  // alone: see Server engine_job
  if (!answered && !job->done.done()) timed_out_ = true;
}

std::string DdlSeeds::stand_in(const seeds::DdlSeedVerdict& verdict) {
  const std::string id = std::to_string(next_stand_in.fetch_add(1));
  if (verdict.kind == seeds::DdlSeedVerdict::Kind::refused) {
    // Fails at parse analysis with 42703 naming the marker; server_message() swaps the error.
    std::string marker = std::string(rewriter::refusal_marker_prefix) + "ddl seed " + id;
    rewriter::SqlError error;
    error.sqlstate = verdict.sqlstate;
    error.message = verdict.message;
    // No position: PostgreSQL 15 gives none for an error in a generation expression of ALTER
    // TABLE (the message says where in the expression the rule found the problem).
    auto statement = rewriter::refusal_statement(marker, error);
    if (refusals_.size() >= 64) refusals_.erase(refusals_.begin());
    refusals_.emplace_back(marker, std::move(error));
    return statement;
  }
  // Completes with the tag ALTER TABLE and changes nothing: the table cannot exist.
  std::string table = "seedproxy ddl seed " + id;
  if (quiet_notices_.size() >= 64) quiet_notices_.erase(quiet_notices_.begin());
  quiet_notices_.push_back(table);
  return "ALTER TABLE IF EXISTS " + pg::quote_identifier(table) +
         " ADD COLUMN IF NOT EXISTS \"x\" pg_catalog.int4";
}

std::optional<std::vector<std::byte>> DdlSeeds::client_message(protocol::Bytes message,
                                                               const StatementRewriting& rewriting,
                                                               char transaction_status) {
  const char type = static_cast<char>(message[0]);
  if (type != 'Q' && type != 'P') return std::nullopt;
  const auto body = message.subspan(protocol::message_header_size);
  std::optional<protocol::ParseView> parse;
  std::optional<std::string_view> sql;
  if (type == 'P') {
    parse = protocol::read_parse(body);
    if (parse) sql = parse->sql;
  } else if (const auto query = protocol::read_query(body)) {
    sql = query->sql;
  }
  if (!sql) return std::nullopt;

  if (!job_) {
    // A failed transaction refuses everything: PostgreSQL says so for the original.
    if (transaction_status == 'E' || sql->size() > max_statement_bytes_) return std::nullopt;
    if (!mentions_generated(*sql)) return std::nullopt;  // cheap pre-check before parsing
    auto ddl = rewriter::read_generated_column_ddl(*sql);
    if (!ddl) return std::nullopt;
    auto job = std::make_shared<seeds::DdlSeedJob>();
    auto& request = job->request;
    request.seed.database = database_;
    if (ddl->schema)
      request.seed.entity = seeds::entity_part(*ddl->schema) + "." + seeds::entity_part(ddl->table);
    request.table = ddl->table;
    request.seed.attribute = pg::quote_identifier(ddl->column);
    request.seed.type = ddl->type;
    request.seed.expression = ddl->expression;
    request.search_path = rewriting.search_path();
    request.if_exists = ddl->if_exists;
    request.if_not_exists = ddl->if_not_exists;
    timed_out_ = false;
    job_ = job;
    snapshots_.submit_ddl_seed(std::move(job));
    return std::nullopt;  // waiting(): the caller waits and hands the message in again
  }

  // The same message again: the verdict is in (or the wait gave up).
  seeds::DdlSeedVerdict verdict;
  if (!job_->done.done()) timed_out_ = true;  // the wait was cut short
  if (timed_out_) {
    verdict.sqlstate = sqlstate::query_canceled;
    verdict.message = "seedproxy gave up waiting for the seed registry after " +
                      std::to_string(static_cast<int>(timeout_seconds)) +
                      " s; the seed may still be registered (SHOW SEEDS on the admin console)";
  } else {
    verdict = job_->verdict;
  }
  job_.reset();
  timed_out_ = false;
  if (verdict.kind == seeds::DdlSeedVerdict::Kind::pass_through) return std::nullopt;
  const std::string text = stand_in(verdict);
  protocol::PacketWriter writer;
  writer.begin(type);
  if (parse) writer.put_cstring(parse->name);
  writer.put_cstring(text);
  // Parse: the parameter type OIDs follow the text unchanged.
  if (parse) writer.put_bytes(parse->parameter_types);
  writer.finish();
  return writer.take();
}

std::optional<std::vector<std::byte>> DdlSeeds::server_message(protocol::Bytes message) {
  const char type = static_cast<char>(message[0]);
  if ((type != 'N' || quiet_notices_.empty()) && (type != 'E' || refusals_.empty()))
    return std::nullopt;
  const auto fields = protocol::read_error_notice(message.subspan(protocol::message_header_size));
  if (!fields) return std::nullopt;
  const std::string_view code = fields->code;
  const std::string_view text = fields->message;
  if (type == 'N') {
    // "relation \"seedproxy ddl seed 7\" does not exist, skipping", in any language.
    const auto quiet = std::find_if(
        quiet_notices_.begin(), quiet_notices_.end(),
        [&](const auto& t) { return text.find("\"" + t + "\"") != std::string_view::npos; });
    // Kept: a prepared stand-in says it again at every Execute (the newest 64 are remembered).
    if (quiet == quiet_notices_.end()) return std::nullopt;
    return std::vector<std::byte>{};
  }
  if (code != sqlstate::undefined_column) return std::nullopt;
  const auto match = std::find_if(refusals_.begin(), refusals_.end(), [&](const auto& r) {
    return text.find("\"" + r.first + "\"") != std::string_view::npos;
  });
  if (match == refusals_.end()) return std::nullopt;
  const rewriter::SqlError error = std::move(match->second);
  refusals_.erase(match);
  return protocol::error_response({.code = error.sqlstate,
                                   .message = error.message,
                                   .detail = error.detail,
                                   .hint = {},
                                   .position = error.position});
}

}  // namespace seedproxy::proxy
