// StatementRewriting's following of the statements that change what a session holds on the
// server (SQL PREPARE, EXECUTE, DEALLOCATE, DISCARD, temporary tables), read only when a text may
// hold one, and the re-preparation of a statement whose rewrite the seed snapshot changed.
#include <algorithm>
#include <memory>

#include "proxy/session/statement_rewriting.hpp"
#include "proxy/wire/messages.hpp"
#include "seeds/registry/snapshots.hpp"

namespace seedproxy::proxy {
namespace {

using Outcome = rewriter::RewriteResult::Outcome;
using TextKind = rewriter::SessionStatement::Kind;

Step::Kind step_kind(TextKind kind) {
  switch (kind) {
    case TextKind::prepare:
      return Step::Kind::prepare;
    case TextKind::execute:
      return Step::Kind::execute;
    case TextKind::deallocate:
      return Step::Kind::deallocate;
    case TextKind::deallocate_all:
      return Step::Kind::deallocate_all;
    case TextKind::discard_all:
      return Step::Kind::discard_all;
    case TextKind::discard_temp:
      return Step::Kind::discard_temp;
    case TextKind::create_temp:
      return Step::Kind::create_temp;
    case TextKind::drop:
      return Step::Kind::drop;
    case TextKind::other:
      break;
  }
  return Step::Kind::none;
}

}  // namespace

std::vector<std::string> StatementRewriting::shadowing(const rewriter::Catalog& catalog,
                                                       const std::vector<std::string>& path) const {
  std::vector<std::string> out;
  for (const auto& name : prepared_.temp_tables().names())
    if (catalog.resolve(path, name)) out.push_back(name);
  return out;
}

std::optional<StatementRewriting::SessionStatements> StatementRewriting::statements_of(
    std::string_view sql, const rewriter::StatementClues& clues, bool mentions_seeds) const {
  if (sql.size() > max_statement_bytes_) return std::nullopt;
  // Parsing costs tens of microseconds: only when the text may hold a statement that changes
  // what the session follows.
  const bool has_statements = prepared_.statements() > 0;
  const bool has_temps = !prepared_.temp_tables().names().empty();
  const bool worth_reading = (mentions_seeds && (clues.prepare || clues.temporary)) ||
                             (prepared_.sql_statements() > 0 && clues.execute) ||
                             (has_statements && clues.deallocate) || (has_temps && clues.drop) ||
                             ((has_statements || has_temps || local_search_path_ ||
                               session_search_path() != default_search_path()) &&
                              clues.discard);
  if (!worth_reading) return std::nullopt;
  return rewriter::read_session_statements(sql);
}

std::optional<std::string> StatementRewriting::stale_text(
    PreparedStatements::Statement& statement) {
  const auto snapshot = current_snapshot();
  if (!statement.resend && (!snapshot || snapshot->version == statement.version))
    return std::nullopt;
  // The seed snapshot changed since the statement was prepared (a phase moved, a seed came or
  // went): resolve the client's text again, as PostgreSQL re-plans it, with its search_path.
  auto found = lookup(*statement.original, snapshot.get(), &statement.search_path);
  const bool rewritten = found.rewrite && found.rewrite->outcome != Outcome::unchanged;
  std::string text = rewritten ? found.rewrite->sql : *statement.original;
  if (found.version != 0) statement.version = found.version;
  statement.rewrite = found.rewrite;
  if (!statement.resend && text == statement.sent) return std::nullopt;
  if (rewritten) (void)text_to_send(*found.rewrite);  // remembers a refusal's marker
  statement.sent = text;
  statement.resend = false;
  return text;
}

void StatementRewriting::plan(std::string_view sql, const rewriter::SessionStatement& statement,
                              bool in_query, Planned& planned) {
  Step step;
  step.kind = step_kind(statement.kind);
  step.name = statement.name;
  step.names = statement.names;
  step.on_commit_drop = statement.on_commit_drop;
  if (step.kind == Step::Kind::prepare) {
    // Followed only when it reads a seed or was rewritten: otherwise no snapshot changes it.
    PreparedStatements::Statement prepared;
    prepared.original = std::make_shared<const std::string>(
        sql.substr(statement.begin, statement.end - statement.begin));
    const auto snapshot = current_snapshot();
    auto found = lookup(*prepared.original, snapshot.get());
    if (found.rewrite &&
        (found.rewrite->outcome != Outcome::unchanged || !found.rewrite->reads.empty())) {
      prepared.search_path = std::move(found.path);
      prepared.version = found.version;
      prepared.sent =
          found.rewrite->outcome == Outcome::unchanged ? *prepared.original : found.rewrite->sql;
      prepared.rewrite = found.rewrite;
      prepared.sql = true;
      for (const auto& read : found.rewrite->reads) planned.prepared_reads.push_back(read);
      step.statement = std::make_shared<const PreparedStatements::Statement>(std::move(prepared));
    } else {
      step.kind = Step::Kind::none;
    }
  } else if (step.kind == Step::Kind::execute && in_query && !planned.all_replaced &&
             std::find(planned.replaced.begin(), planned.replaced.end(), statement.name) ==
                 planned.replaced.end()) {
    // PostgreSQL would run the statement prepared for an older snapshot: prepare it again just
    // before this EXECUTE, in the same Query, so transaction and error states stay its own.
    auto* executed = prepared_.find(statement.name);
    if (executed && executed->sql && !prepared_.replacing(statement.name))
      if (const auto text = stale_text(*executed)) {
        planned.insertions.push_back(
            {statement.begin, reprepare_statements(statement.name, executed->held, *text)});
        if (executed->held)
          planned.steps->push_back(
              {Step::Kind::injected_deallocate, statement.name, {}, false, {}, executed->id});
        planned.steps->push_back(
            {Step::Kind::injected_prepare, statement.name, {}, false, {}, executed->id});
      }
  }
  if (statement.kind == TextKind::prepare || statement.kind == TextKind::deallocate)
    planned.replaced.push_back(statement.name);
  if (statement.kind == TextKind::deallocate_all || statement.kind == TextKind::discard_all)
    planned.all_replaced = true;
  planned.steps->push_back(std::move(step));
}

std::optional<std::vector<std::byte>> StatementRewriting::refresh(std::string_view name,
                                                                  protocol::Bytes message) {
  auto* statement = name.empty() ? nullptr : prepared_.find(name);
  // A statement whose text is EXECUTE of a SQL statement: that one, before the Bind.
  const auto* holder = statement ? statement : (name.empty() ? &prepared_.unnamed() : nullptr);
  const bool executes =
      holder && holder->steps && holder->steps->front().kind == Step::Kind::execute;
  if (!statement && !executes) return std::nullopt;  // the common case: nothing followed
  std::vector<std::byte> out;
  if (statement && statement->sql) {
    // Made by SQL PREPARE: prepared again by the proxy's own PREPARE (keeping its declared types).
    const auto text = prepared_.replacing(name) ? std::nullopt : stale_text(*statement);
    if (text) {
      prepared_.reprepare_sent(*statement);
      out = reprepare_messages(name, *text);
    }
  } else if (statement) {
    if (stale_text(*statement)) {
      prepared_.reparse_sent(*statement);
      // PostgreSQL drops the old plan with the Close; its answers to both are dropped on the way
      // back so the client sees exactly the answers to its own messages.
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
      out = writer.take();
    }
  }
  if (executes) {
    const std::string& executed_name = holder->steps->front().name;
    auto* executed = prepared_.find(executed_name);
    if (executed && executed->sql && !prepared_.replacing(executed_name))
      if (const auto text = stale_text(*executed)) {
        prepared_.reprepare_sent(*executed);
        const auto messages = reprepare_messages(executed_name, *text);
        out.insert(out.end(), messages.begin(), messages.end());
      }
  }
  if (out.empty()) return std::nullopt;
  out.insert(out.end(), message.begin(), message.end());
  return out;
}

}  // namespace seedproxy::proxy
