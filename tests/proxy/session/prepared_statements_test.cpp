// Prepared statement bookkeeping: reads per Execute, portal lifetimes, and which ParseComplete and
// CloseComplete answer messages the proxy injected, through pipelines, errors and several Syncs.
#include "proxy/session/prepared_statements.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <string>

using seedproxy::proxy::PreparedStatements;
using seedproxy::proxy::StatementRewrite;
using seedproxy::proxy::Step;
using seedproxy::proxy::Steps;

namespace {

StatementRewrite reading(std::string attribute) {
  auto rewrite = std::make_shared<seedproxy::rewriter::CachedRewrite>();
  rewrite->outcome = seedproxy::rewriter::RewriteResult::Outcome::rewritten;
  rewrite->sql = "SELECT (expr) AS " + attribute + " FROM t";
  rewrite->reads.push_back({"public", "t", std::move(attribute)});
  return rewrite;
}

// A client Parse of a tracked named (or unnamed) statement that reads `attribute`.
void parse_tracked(PreparedStatements& prepared, std::string_view name, std::string attribute = "a",
                   std::uint64_t version = 1) {
  PreparedStatements::Statement statement;
  statement.original = std::make_shared<const std::string>("SELECT " + attribute + " FROM t");
  statement.rewrite = reading(attribute);
  statement.sent = statement.rewrite->sql;
  statement.version = version;
  prepared.parse(name, &statement);
}

// What the session does at a Bind of a stale statement: new text, then Close + Parse injected.
void inject(PreparedStatements& prepared, std::string_view name) {
  auto* statement = prepared.find(name);
  REQUIRE(statement != nullptr);
  statement->sent = "SELECT new";
  statement->version += 1;
  statement->resend = false;
  prepared.reparse_sent(*statement);
}

// The server's answers, as the session hands them over (the type as the message starts, then
// its tag or status): true when the message answers one the proxy injected.
bool answers_injected(PreparedStatements& p, char type) { return p.server_started(type).injected; }
bool parse_complete(PreparedStatements& p) { return answers_injected(p, '1'); }
bool close_complete(PreparedStatements& p) { return answers_injected(p, '3'); }
bool error(PreparedStatements& p) {
  (void)p.server_started('E');
  return false;  // an error always reaches the client
}
bool ready(PreparedStatements& p, char status = 'I') {
  (void)p.server_started('Z');
  p.ready(status);
  return false;
}

// A statement of a Query that does `kind` to `name`.
Step step_of(Step::Kind kind, std::string name = {}) {
  Step step;
  step.kind = kind;
  step.name = std::move(name);
  return step;
}

// A Query of `steps`, every statement completed, then its ReadyForQuery.
void run_query(PreparedStatements& prepared, Steps steps, char status = 'I') {
  const auto count = steps.size();
  prepared.query({}, std::make_shared<const Steps>(std::move(steps)));
  for (std::size_t i = 0; i < count; ++i) {
    REQUIRE(!answers_injected(prepared, 'C'));
    prepared.command_tag("SELECT 1");
  }
  ready(prepared, status);
}

}  // namespace

TEST_CASE("one read per Execute of a portal bound from a statement that reads a seed") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  prepared.parse("plain", nullptr);
  prepared.bind("", "s");
  CHECK(prepared.execute("") != nullptr);
  CHECK(prepared.execute("") == nullptr);  // the same portal again: one execution
  prepared.bind("", "s");
  const auto counted = prepared.execute("");
  REQUIRE(counted != nullptr);
  CHECK(counted->reads.front().attribute == "a");
  prepared.bind("", "plain");
  CHECK(prepared.execute("") == nullptr);
  prepared.bind("", "unknown");
  CHECK(prepared.execute("") == nullptr);
  // Named portals.
  prepared.bind("p1", "s");
  prepared.bind("p2", "plain");
  CHECK(prepared.portals() == 1);
  CHECK(prepared.execute("p2") == nullptr);
  CHECK(prepared.execute("p1") != nullptr);
  CHECK(prepared.execute("p1") == nullptr);
  prepared.bind("p3", "s");
  prepared.close('P', "p3");
  CHECK(prepared.execute("p3") == nullptr);
}

TEST_CASE("the unnamed statement: re-parsed each time, dropped by a Query") {
  PreparedStatements prepared;
  parse_tracked(prepared, "");
  CHECK(prepared.statements() == 0);  // only its reads are kept
  prepared.bind("", "");
  CHECK(prepared.execute("") != nullptr);
  prepared.parse("", nullptr);  // a new unnamed statement that reads nothing
  prepared.bind("", "");
  CHECK(prepared.execute("") == nullptr);
  parse_tracked(prepared, "");
  prepared.query();
  prepared.bind("", "");
  CHECK(prepared.execute("") == nullptr);
}

TEST_CASE("nothing is held until a statement must be followed; then it behaves the same") {
  PreparedStatements prepared;
  // Simple Queries and statements the proxy does not follow, as most clients send, hold nothing.
  prepared.query();
  ready(prepared);
  prepared.parse("", nullptr);
  prepared.parse("plain", nullptr);
  prepared.bind("", "");
  prepared.bind("p", "plain");
  CHECK(prepared.execute("") == nullptr);
  CHECK(prepared.execute("p") == nullptr);
  prepared.close('S', "plain");
  prepared.close('P', "");
  prepared.batch_end('S');
  CHECK_FALSE(prepared.holds_any());
  CHECK(prepared.unnamed().id == 0);
  CHECK(prepared.portals() == 0);
  // A tracked statement is the first thing held; reads count per Execute from then on.
  parse_tracked(prepared, "s");
  CHECK(prepared.holds_any());
  CHECK(prepared.statements() == 1);
  prepared.bind("", "s");
  CHECK(prepared.execute("") != nullptr);
  prepared.parse("", nullptr);
  prepared.bind("", "");
  CHECK(prepared.execute("") == nullptr);  // the untracked unnamed statement replaced nothing held
  // An untracked unnamed Parse before anything is held, then a tracked one: the tracked wins.
  PreparedStatements other;
  other.parse("", nullptr);
  parse_tracked(other, "");
  other.bind("", "");
  CHECK(other.execute("") != nullptr);
}

TEST_CASE("a statement closed or deallocated is not tracked any more") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  parse_tracked(prepared, "t");
  parse_tracked(prepared, "u");
  prepared.close('S', "s");
  CHECK(prepared.find("s") == nullptr);
  prepared.batch_end('S');
  for (int i = 0; i < 3; ++i) CHECK(!parse_complete(prepared));
  CHECK(!close_complete(prepared));
  CHECK(!ready(prepared));
  // DEALLOCATE in a Query counts once PostgreSQL completes it.
  run_query(prepared, {step_of(Step::Kind::deallocate, "t")});
  CHECK(prepared.find("t") == nullptr);
  CHECK(prepared.find("u") != nullptr);
  run_query(prepared, {step_of(Step::Kind::deallocate_all)});
  CHECK(prepared.statements() == 0);
  // A Parse of an untracked text under a tracked name replaces it.
  parse_tracked(prepared, "v");
  prepared.parse("v", nullptr);
  CHECK(prepared.find("v") == nullptr);
}

TEST_CASE("portals end with their transaction, pipelined batches each at their own end") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  prepared.bind("p", "s");
  prepared.batch_end('S');
  prepared.bind("q", "s");
  prepared.batch_end('S');
  CHECK(!parse_complete(prepared));
  CHECK(!ready(prepared, 'T'));  // still in a transaction block: p lives on
  CHECK(prepared.portals() == 2);
  CHECK(!ready(prepared, 'I'));  // the second batch committed: both are gone
  CHECK(prepared.portals() == 0);

  prepared.bind("p", "s");
  prepared.batch_end('S');
  prepared.bind("q", "s");  // bound in the next batch, before the first is answered
  CHECK(!ready(prepared, 'I'));
  CHECK(prepared.portals() == 1);
  CHECK(prepared.execute("q") != nullptr);
  CHECK(prepared.execute("p") == nullptr);
}

TEST_CASE("the answers to an injected Close and Parse are dropped, the client's are not") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  prepared.batch_end('S');
  CHECK(!parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(prepared.outstanding() == 0);

  inject(prepared, "s");  // in front of the client's Bind
  prepared.bind("", "s");
  prepared.batch_end('S');
  CHECK(close_complete(prepared));
  CHECK(parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(prepared.outstanding() == 0);
  CHECK(!prepared.find("s")->resend);
}

TEST_CASE("a pipeline with several Syncs in flight keeps every answer in its place") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  parse_tracked(prepared, "t");
  prepared.batch_end('S');
  REQUIRE(!parse_complete(prepared));
  REQUIRE(!parse_complete(prepared));
  REQUIRE(!ready(prepared));

  // Client: Parse x, Sync | Close s(inj) Parse s(inj) Bind s, Close t(client), Sync |
  //         Parse y, Close t(inj) Parse t(inj) Describe t, Sync
  prepared.parse("x", nullptr);
  prepared.batch_end('S');
  inject(prepared, "s");
  prepared.bind("", "s");
  prepared.batch_end('S');
  prepared.parse("y", nullptr);
  inject(prepared, "t");
  prepared.batch_end('S');
  prepared.close('S', "x");
  prepared.batch_end('S');
  CHECK(prepared.outstanding() == 12);  // the Bind waits for its answer too

  CHECK(!parse_complete(prepared));  // x
  CHECK(!ready(prepared));
  CHECK(close_complete(prepared));  // injected for s
  CHECK(parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(!parse_complete(prepared));  // y
  CHECK(close_complete(prepared));   // injected for t
  CHECK(parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(!close_complete(prepared));  // the client's Close of x
  CHECK(!ready(prepared));
  CHECK(prepared.outstanding() == 0);
}

TEST_CASE("an error before the injected messages skips them: the statement stays stale") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  prepared.parse("bad", nullptr);  // fails
  inject(prepared, "s");
  prepared.bind("", "s");
  prepared.batch_end('S');
  parse_tracked(prepared, "t");  // the next batch is unaffected
  prepared.batch_end('S');

  CHECK(!parse_complete(prepared));  // s (the client's original Parse)
  CHECK(!error(prepared));           // bad: the rest up to Sync is skipped
  CHECK(prepared.find("s")->resend);
  CHECK(!ready(prepared));
  CHECK(!parse_complete(prepared));  // t: the client's, forwarded
  CHECK(!ready(prepared));
  CHECK(prepared.outstanding() == 0);
  CHECK(prepared.find("t") != nullptr);
}

TEST_CASE("an injected Parse that fails leaves the statement stale; the client gets the error") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  prepared.batch_end('S');
  REQUIRE(!parse_complete(prepared));
  REQUIRE(!ready(prepared));

  inject(prepared, "s");
  prepared.bind("", "s");
  prepared.batch_end('S');
  CHECK(close_complete(prepared));
  CHECK(!error(prepared));  // forwarded: it answers the client's Bind in the client's eyes
  CHECK(!ready(prepared));
  REQUIRE(prepared.find("s") != nullptr);
  CHECK(prepared.find("s")->resend);

  // The next Bind injects again, and this time it works.
  inject(prepared, "s");
  prepared.bind("", "s");
  prepared.batch_end('S');
  CHECK(close_complete(prepared));
  CHECK(parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(!prepared.find("s")->resend);
}

TEST_CASE("an error after the injected messages does not touch them") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  inject(prepared, "s");
  prepared.bind("", "s");
  prepared.batch_end('S');
  CHECK(!parse_complete(prepared));
  CHECK(close_complete(prepared));
  CHECK(parse_complete(prepared));
  CHECK(!error(prepared));  // the Execute failed
  CHECK(!ready(prepared, 'I'));
  CHECK(!prepared.find("s")->resend);
}

TEST_CASE("a client Parse that fails leaves nothing tracked under its name") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  prepared.batch_end('S');
  CHECK(!error(prepared));
  CHECK(!ready(prepared));
  CHECK(prepared.find("s") == nullptr);

  parse_tracked(prepared, "");
  prepared.bind("", "");
  prepared.batch_end('S');
  CHECK(!error(prepared));
  CHECK(!ready(prepared));
  prepared.bind("", "");
  CHECK(prepared.execute("") == nullptr);
}

TEST_CASE("the client closes a statement while its re-Parse is in flight") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  REQUIRE(!parse_complete(prepared));
  inject(prepared, "s");
  prepared.bind("", "s");
  prepared.close('S', "s");
  parse_tracked(prepared, "s", "b");  // a new statement under the same name
  prepared.batch_end('S');
  CHECK(close_complete(prepared));
  CHECK(parse_complete(prepared));
  CHECK(!close_complete(prepared));  // the client's Close
  CHECK(!error(prepared));           // the client's new Parse fails
  CHECK(!ready(prepared));
  CHECK(prepared.find("s") == nullptr);
  CHECK(prepared.outstanding() == 0);
}

TEST_CASE("a simple Query's error ends at its own ReadyForQuery; in a broken batch it is skipped") {
  PreparedStatements prepared;
  prepared.query();
  parse_tracked(prepared, "s");
  prepared.batch_end('S');
  CHECK(!error(prepared));  // the Query failed
  CHECK(!ready(prepared));
  CHECK(!parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(prepared.find("s") != nullptr);

  // An extended-protocol error: PostgreSQL ignores the Query that follows until Sync.
  prepared.parse("bad", nullptr);
  prepared.query();
  inject(prepared, "s");
  prepared.batch_end('S');
  parse_tracked(prepared, "t");
  prepared.batch_end('S');
  CHECK(!error(prepared));
  CHECK(prepared.find("s")->resend);
  CHECK(!ready(prepared));  // the Sync's: the Query got none
  CHECK(!parse_complete(prepared));
  CHECK(!ready(prepared));
  CHECK(prepared.outstanding() == 0);
}

TEST_CASE("the answer queue stays bounded under steady and deeply pipelined traffic") {
  PreparedStatements prepared;
  for (int i = 0; i < 10000; ++i) {
    prepared.parse("", nullptr);
    prepared.batch_end('S');
    REQUIRE(!parse_complete(prepared));
    REQUIRE(!ready(prepared));
  }
  CHECK(prepared.outstanding() == 0);
  parse_tracked(prepared, "s");
  for (int i = 0; i < 5000; ++i) {
    inject(prepared, "s");
    prepared.batch_end('S');
  }
  CHECK(prepared.outstanding() == 15001);
  REQUIRE(!parse_complete(prepared));
  for (int i = 0; i < 5000; ++i) {
    REQUIRE(close_complete(prepared));
    REQUIRE(parse_complete(prepared));
    REQUIRE(!ready(prepared));
  }
  CHECK(prepared.outstanding() == 0);
}

TEST_CASE(
    "queue entries reused after a drain and compacted under a lag keep every answer in place") {
  PreparedStatements prepared;
  parse_tracked(prepared, "s");
  REQUIRE(!parse_complete(prepared));
  // 9,000 entries, then drained: every one stays as a spare.
  for (int i = 0; i < 3000; ++i) {
    inject(prepared, "s");
    prepared.batch_end('S');
  }
  for (int i = 0; i < 3000; ++i) {
    REQUIRE(close_complete(prepared));
    REQUIRE(parse_complete(prepared));
    REQUIRE(!ready(prepared));
  }
  REQUIRE(prepared.outstanding() == 0);
  // Spares reused while 400 batches stay unanswered: the queue is compacted past 1,024 answered
  // entries with spares behind it, and each answer still goes to its own message.
  const auto answer_batch = [&] {
    REQUIRE(close_complete(prepared));
    REQUIRE(parse_complete(prepared));
    REQUIRE(!parse_complete(prepared));  // the client's own Parse
    REQUIRE(!ready(prepared));
  };
  for (int i = 0; i < 3000; ++i) {
    inject(prepared, "s");
    prepared.parse("", nullptr);
    prepared.batch_end('S');
    if (i >= 400) answer_batch();
  }
  CHECK(prepared.outstanding() == 400 * 4);
  for (int i = 0; i < 400; ++i) answer_batch();
  CHECK(prepared.outstanding() == 0);
  // A reused entry carries nothing of the message it held before: a Query without statements
  // the session follows does not run the CREATE TEMP of an earlier one again.
  // (Each time behind a Sync, so the Query takes the second entry, not the first.)
  prepared.batch_end('S');
  prepared.query({}, std::make_shared<const Steps>(Steps{step_of(Step::Kind::create_temp, "t1")}));
  REQUIRE(!ready(prepared));
  REQUIRE(!answers_injected(prepared, 'C'));
  REQUIRE(!ready(prepared));
  CHECK(prepared.temp_tables().names().size() == 1);
  run_query(prepared, {step_of(Step::Kind::discard_temp)});
  CHECK(prepared.temp_tables().names().empty());
  prepared.batch_end('S');
  prepared.query();
  REQUIRE(!ready(prepared));
  REQUIRE(!answers_injected(prepared, 'C'));
  REQUIRE(!ready(prepared));
  CHECK(prepared.temp_tables().names().empty());
}
