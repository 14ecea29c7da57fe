// Rewriting a whole client text: pre-filter, parse once, resolve each statement, splice, and
// turn a refused statement into one PostgreSQL fails on so its own state machine stays exact.
#include "rewriter/splice/rewriter.hpp"

#include <algorithm>
#include <cstdio>

#include "common/identifiers.hpp"
#include "common/text.hpp"
#include "rewriter/parse/pg_parser.hpp"
#include "rewriter/resolve/resolver.hpp"
#include "rewriter/splice/value_constants.hpp"

namespace seedproxy::rewriter {
namespace {

std::string marker_for(std::string_view sql, std::size_t statement) {
  const std::uint64_t hash = text::fnv1a(sql);  // stable across runs and processes
  char text[32];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash + statement));
  return std::string(refusal_marker_prefix) + text;
}

// Applies `edits` to `sql` into result.sql, recording each applied edit in result.splices.
void splice(std::string_view sql, std::vector<Edit> edits, RewriteResult& result) {
  std::stable_sort(edits.begin(), edits.end(),
                   [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
  std::string& out = result.sql;
  out.clear();
  out.reserve(sql.size() + 64 * edits.size());
  result.splices.clear();
  result.splices.reserve(edits.size());
  int at = 0;
  for (const auto& edit : edits) {
    if (edit.begin < at) continue;  // overlapping edits cannot come from one parse; be safe
    out.append(sql.substr(static_cast<std::size_t>(at), static_cast<std::size_t>(edit.begin - at)));
    out += edit.text;
    at = edit.end;
    const auto anchor = edit.anchor == Edit::no_anchor  ? Splice::no_anchor
                        : edit.anchor == Edit::at_begin ? static_cast<std::uint32_t>(edit.begin)
                                                        : static_cast<std::uint32_t>(edit.anchor);
    result.splices.push_back({static_cast<std::uint32_t>(edit.begin),
                              static_cast<std::uint32_t>(edit.end),
                              static_cast<std::uint32_t>(edit.text.size()), anchor});
  }
  out.append(sql.substr(static_cast<std::size_t>(at)));
}

void refuse_whole_text(std::string_view sql, const ParseFailure& failure, RewriteResult& result) {
  result.outcome = RewriteResult::Outcome::refused;
  result.error = SqlError{failure.sqlstate, failure.message, failure.detail, failure.position};
  result.refusal_marker = marker_for(sql, 0);
  std::vector<Edit> edits;
  edits.push_back(
      {0, static_cast<int>(sql.size()), " SELECT " + pg::quote_identifier(result.refusal_marker)});
  splice(sql, std::move(edits), result);
}

}  // namespace

std::string refusal_statement(std::string_view marker, const SqlError& error) {
  std::string why = "seedproxy refused the client's statement here and answered it with ERROR ";
  why += error.sqlstate;
  why += ": ";
  why += error.message;
  if (!error.detail.empty()) {
    why += " (";
    why += error.detail;
    why += ')';
  }
  why +=
      ". The SELECT after this comment stands in for it, so that the transaction fails as that "
      "statement would: its error, column \"";
  why += marker;
  why += "\" does not exist, is expected and never reaches the client";
  std::string out = pg::sql_comment(why);
  out += " SELECT ";
  out += pg::quote_identifier(marker);
  return out;
}

bool depends_on_catalog(std::string_view sql) {
  const auto shared = parse_sql_shared(sql);
  const ParsedSql& parsed = *shared;
  if (parsed.failure) return false;  // rewrite() sends it as it came
  for (const auto& entry : list_at(parsed.tree.root(), "stmts")) {
    bool resolved = false;
    for_tagged(node_at(entry, "stmt"),
               [&](std::string_view kind, const Json&) { resolved = resolved_kind(kind); });
    if (resolved) return true;
  }
  return false;
}

RewriteResult rewrite(const RewriteRequest& request) {
  RewriteResult result;
  if (request.seeds.empty() || !request.seeds.might_apply(request.sql)) return result;
  const auto shared = parse_sql_shared(request.sql);
  const ParsedSql& parsed = *shared;
  // A text PostgreSQL cannot parse goes through as sent: the server reports its own error. One
  // the proxy could not parse although PostgreSQL might (too large for the parser's stack
  // budget) may name a seed unresolved: the whole text is refused.
  if (parsed.failure && !parsed.failure->sqlstate.empty()) {
    refuse_whole_text(request.sql, *parsed.failure, result);
    return result;
  }
  if (parsed.failure) return result;

  std::vector<Edit> edits;
  const auto& statements = list_at(parsed.tree.root(), "stmts");
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const auto& entry = statements[i];
    Resolution resolution = resolve_statement(node_at(entry, "stmt"), request, parsed.tokens);
    if (resolution.error) {
      const int begin = entry.value("stmt_location", 0);
      const int length = entry.value("stmt_len", 0);
      const int end = length == 0 ? static_cast<int>(request.sql.size()) : begin + length;
      // Statements after this one never run, so resolving them is not needed.
      result.outcome = RewriteResult::Outcome::refused;
      result.error = std::move(*resolution.error);
      result.refusal_marker = marker_for(request.sql, i);
      std::string stand_in(1, ' ');
      stand_in += refusal_statement(result.refusal_marker, result.error);
      edits.push_back({begin, end, std::move(stand_in)});
      splice(request.sql, std::move(edits), result);
      return result;
    }
    for (auto& edit : resolution.edits) edits.push_back(std::move(edit));
    // Once per statement and attribute, however often the statement names it.
    const auto first_of_statement = result.reads.size();
    for (const auto& read : resolution.reads) {
      const auto begin = result.reads.begin() + static_cast<std::ptrdiff_t>(first_of_statement);
      if (std::none_of(begin, result.reads.end(),
                       [&](const AttributeRead& seen) { return seen.attribute == read.attribute; }))
        result.reads.push_back(read);
    }
  }
  result.value_constants = value_constants(parsed);
  if (edits.empty()) return result;
  result.outcome = RewriteResult::Outcome::rewritten;
  splice(request.sql, std::move(edits), result);
  return result;
}

}  // namespace seedproxy::rewriter
