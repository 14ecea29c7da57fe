// Server-side state across seed snapshots: statements prepared with SQL PREPARE are prepared again
// in front of the EXECUTE that would run them stale (inside the client's Query, or as extended
// messages before a Bind), with the answers dropped and every transaction state PostgreSQL's own;
// their reads count per EXECUTE; DEALLOCATE, DISCARD and temporary tables are followed from the
// answers PostgreSQL gives. No sockets, no database.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/sqlstate.hpp"
#include "proxy/observe/observer.hpp"
#include "proxy/session/statement_rewriting.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "tests/proxy/session/fake_snapshots.hpp"

namespace {

using namespace seedproxy;
using namespace seedproxy::test;
using proxy::StatementRewriting;
using rewriter::Phase;

constexpr std::size_t max_statement_bytes = 1u << 20;

std::vector<rewriter::Relation> bank(bool with_column = false) {
  std::vector<std::string> columns{"id", "owner", "balance", "credit_limit"};
  if (with_column) columns.emplace_back("risk_score");
  return {{"public", "account", columns}};
}
rewriter::SeedDefinition risk_score(Phase phase = Phase::virtual_) {
  return {"public", "account", "risk_score", "numeric", "balance / 1000.0", phase};
}

struct Reads final : proxy::Observer {
  int count = 0;
  void client_accepted() noexcept override {}
  void client_refused() noexcept override {}
  void client_closed() noexcept override {}
  void upstream_connected(Duration) noexcept override {}
  void upstream_error(proxy::UpstreamStage) noexcept override {}
  void statement_started(proxy::StatementKind) noexcept override {}
  void statement_finished(proxy::StatementKind, Duration) noexcept override {}
  void statement_rewritten(Duration, bool) noexcept override {}
  void attribute_read(std::string_view, std::string_view, std::string_view) noexcept override {
    ++count;
  }
  void protocol_error(proxy::Peer) noexcept override {}
};

struct Fixture {
  FakeSnapshots snapshots;
  StatementRewriting rewriting{snapshots, "app", "alice", max_statement_bytes, std::nullopt};
  Reads reads;
  Fixture() {
    snapshots.publish(bank(), {risk_score()});
    rewriting.set_observer(reads);
  }
  void materialize() { snapshots.publish(bank(true), {risk_score(Phase::materialized)}); }
  void make_virtual() { snapshots.publish(bank(), {risk_score()}); }

  // What PostgreSQL receives for a client message: the messages, and the Query or Parse text.
  std::vector<WireMessage> send(const ByteVector& message) {
    const auto replaced = rewriting.client_message(message);
    return split_messages(replaced ? *replaced : message);
  }
  std::string sent_query(std::string_view sql) {
    const auto messages = send(query(sql));
    REQUIRE(types_of(messages) == "Q");
    return std::string(protocol::read_query(messages[0].bytes())->sql);
  }
  // A server message as the session hands it over: "drop", "forward" or "replace".
  std::string receive(const ByteVector& message) {
    rewriting.server_started(static_cast<char>(message[0]));
    const auto out = rewriting.server_message(message);
    return !out ? "forward" : out->empty() ? "drop" : "replace";
  }
  std::string complete(std::string_view tag) { return receive(command_complete(tag)); }
  std::string ready(char status = 'I') { return receive(ready_for_query(status)); }
  // A Query answered as PostgreSQL answers a success: one CommandComplete per tag, then Z.
  std::vector<std::string> answer(const std::vector<std::string_view>& tags, char status = 'I') {
    std::vector<std::string> out;
    for (const auto tag : tags) out.push_back(complete(tag));
    out.push_back(ready(status));
    return out;
  }
  // Whether `sql` reaches PostgreSQL rewritten (then answered, leaving the transaction `status`).
  bool rewritten(std::string_view sql, char status = 'I') {
    const bool changed = sent_query(sql) != sql;
    (void)answer({"SELECT 1"}, status);
    return changed;
  }
};

using Answers = std::vector<std::string>;
const Answers forwarded_one{"forward", "forward"};

}  // namespace

TEST_CASE("SQL PREPARE is followed from its answer; its reads count at each EXECUTE") {
  Fixture f;
  const std::string prepare = "PREPARE p(int) AS SELECT risk_score FROM account WHERE id = $1";
  const auto sent = f.sent_query(prepare);
  CHECK(sent.find("balance") != std::string::npos);  // the inner statement is rewritten
  CHECK(f.answer({"PREPARE"}) == forwarded_one);
  CHECK(f.reads.count == 0);
  CHECK(f.rewriting.prepared().sql_statements() == 1);
  for (int i = 1; i <= 3; ++i) {
    CHECK(f.sent_query("EXECUTE p(1)") == "EXECUTE p(1)");  // the snapshot did not change
    CHECK(f.answer({"SELECT 1"}) == forwarded_one);
    CHECK(f.reads.count == i);
  }
  // A PREPARE that fails is not followed.
  (void)f.sent_query("PREPARE q AS SELECT risk_score FROM account");
  CHECK(f.receive(server_error(sqlstate::syntax_error, "oops")) == "forward");  // before any edit
  CHECK(f.ready() == "forward");
  CHECK(f.rewriting.prepared().sql_statements() == 1);
}

TEST_CASE("EXECUTE of a statement prepared for an older snapshot: prepared again in the Query") {
  Fixture f;
  (void)f.sent_query("PREPARE p AS SELECT * FROM account");
  (void)f.answer({"PREPARE"});
  f.materialize();

  const std::string client = "SELECT 1; EXECUTE p; SELECT 2";
  const auto sent = f.sent_query(client);
  // DEALLOCATE and the PREPARE of the client's text, now resolved as a real column, right in
  // front of the EXECUTE.
  CHECK(sent ==
        "SELECT 1;DEALLOCATE \"p\"; PREPARE p AS SELECT * FROM account\n;  EXECUTE p; SELECT 2");
  // The answers to what the proxy put in are dropped; the client's own reach it.
  CHECK(f.answer({"SELECT 1", "DEALLOCATE", "PREPARE", "SELECT 6", "SELECT 1"}) ==
        Answers{"forward", "drop", "drop", "forward", "forward", "forward"});
  // Up to date now.
  CHECK(f.sent_query("EXECUTE p") == "EXECUTE p");
  (void)f.answer({"SELECT 6"});

  // An error after the inserted statements counts in the client's text.
  f.make_virtual();
  const std::string again = "EXECUTE p; SELECT nosuch";
  const auto resent = f.sent_query(again);
  CHECK(f.complete("DEALLOCATE") == "drop");
  CHECK(f.complete("PREPARE") == "drop");
  CHECK(f.complete("SELECT 6") == "forward");
  const auto at = static_cast<int>(resent.find("nosuch")) + 1;
  const auto error = Body()
                         .u8('S')
                         .cstring("ERROR")
                         .u8('C')
                         .cstring(sqlstate::undefined_column)
                         .u8('M')
                         .cstring("column \"nosuch\" does not exist")
                         .u8('P')
                         .cstring(std::to_string(at))
                         .u8(0)
                         .message('E');
  f.rewriting.server_started('E');
  const auto mapped = f.rewriting.server_message(error);
  REQUIRE(mapped);
  const auto messages = split_messages(*mapped);  // the fields are views into these bytes
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  REQUIRE(fields);
  CHECK(fields->position == std::to_string(again.find("nosuch") + 1));
  CHECK(f.ready() == "forward");
}

TEST_CASE(
    "an EXECUTE after a PREPARE of the same name in the same Query runs that PREPARE's text") {
  Fixture f;
  (void)f.sent_query("PREPARE p AS SELECT risk_score FROM account");
  (void)f.answer({"PREPARE"});
  (void)f.sent_query("PREPARE q AS SELECT risk_score FROM account");
  (void)f.answer({"PREPARE"});
  f.materialize();
  // The client's own DEALLOCATE and PREPARE come first: re-preparing the old text in front of
  // the EXECUTE would undo them.
  const std::string client =
      "DEALLOCATE p; PREPARE p AS SELECT id FROM account; EXECUTE p; "
      "DEALLOCATE ALL; PREPARE q AS SELECT 1; EXECUTE q";
  CHECK(f.sent_query(client) == client);
  CHECK(f.answer({"DEALLOCATE", "PREPARE", "SELECT 6", "DEALLOCATE ALL", "PREPARE", "SELECT 1"}) ==
        Answers(7, "forward"));
  CHECK(f.rewriting.prepared().statements() == 0);  // PREPARE q AS SELECT 1: nothing to follow
  // DISCARD ALL drops them too.
  (void)f.sent_query("PREPARE r AS SELECT risk_score FROM account");
  (void)f.answer({"PREPARE"});
  f.make_virtual();
  const std::string discard = "DISCARD ALL; EXECUTE r";
  CHECK(f.sent_query(discard) == discard);
}

TEST_CASE("in a failed transaction block the inserted DEALLOCATE fails as the EXECUTE would") {
  Fixture f;
  (void)f.sent_query("PREPARE p AS SELECT * FROM account");
  (void)f.answer({"PREPARE"});
  f.materialize();
  const auto sent = f.sent_query("EXECUTE p");
  CHECK(sent.starts_with("DEALLOCATE"));
  // 25P02, as PostgreSQL gives the client's own EXECUTE there: forwarded, without a position.
  const auto aborted = server_error(sqlstate::in_failed_sql_transaction,
                                    "current transaction is aborted, commands ignored until end "
                                    "of transaction block");
  CHECK(f.receive(aborted) == "replace");  // the same error, its position dropped
  CHECK(f.ready('E') == "forward");
  CHECK(f.sent_query("ROLLBACK") == "ROLLBACK");
  CHECK(f.answer({"ROLLBACK"}) == forwarded_one);
  // PostgreSQL still holds the old statement: the next EXECUTE prepares it again.
  CHECK(f.sent_query("EXECUTE p").starts_with("DEALLOCATE \"p\"; "));
  CHECK(f.answer({"DEALLOCATE", "PREPARE", "SELECT 6"}) ==
        Answers{"drop", "drop", "forward", "forward"});
}

TEST_CASE("an inserted PREPARE that fails leaves no statement: the next one is PREPARE alone") {
  Fixture f;
  (void)f.sent_query("PREPARE p AS SELECT risk_score FROM account");
  (void)f.answer({"PREPARE"});
  f.materialize();
  (void)f.sent_query("EXECUTE p");
  CHECK(f.complete("DEALLOCATE") == "drop");
  CHECK(f.receive(server_error(sqlstate::undefined_column, "column does not exist")) == "replace");
  CHECK(f.ready() == "forward");
  const auto sent = f.sent_query("EXECUTE p");
  CHECK(sent.starts_with(" PREPARE p AS") == false);
  CHECK(sent.find("DEALLOCATE") == std::string::npos);
  CHECK(sent.find("PREPARE p AS SELECT risk_score FROM account") != std::string::npos);
  CHECK(f.answer({"PREPARE", "SELECT 6"}) == Answers{"drop", "forward", "forward"});
}

TEST_CASE("an EXECUTE sent with the extended protocol: PREPARE again in front of its Bind") {
  Fixture f;
  (void)f.sent_query("PREPARE p AS SELECT * FROM account");
  (void)f.answer({"PREPARE"});
  f.materialize();
  CHECK(types_of(f.send(parse("", "EXECUTE p"))) == "P");
  const auto bound = f.send(bind("", ""));
  REQUIRE(types_of(bound) == "CPBECCB");
  CHECK(protocol::read_close(bound[0].bytes())->name == "p");
  CHECK(protocol::read_parse(bound[1].bytes())->sql == "PREPARE p AS SELECT * FROM account");
  CHECK(types_of(f.send(execute(""))) == "E");
  CHECK(types_of(f.send(sync_message())) == "S");
  // The client's ParseComplete, then the answers to the injected messages, then its own.
  CHECK(f.receive(parse_complete()) == "forward");
  for (const auto& answer : {close_complete(), parse_complete(), Body().message('2'),
                             command_complete("PREPARE"), close_complete(), close_complete()})
    CHECK(f.receive(answer) == "drop");
  CHECK(f.receive(Body().message('2')) == "forward");
  CHECK(f.complete("SELECT 6") == "forward");
  CHECK(f.ready() == "forward");
  // Prepared again already: the next Bind goes as sent.
  (void)f.send(parse("", "EXECUTE p"));
  CHECK(types_of(f.send(bind("", ""))) == "B");
}

TEST_CASE("an EXECUTE pipelined behind an unanswered PREPARE or DEALLOCATE of its name") {
  Fixture f;
  (void)f.sent_query("PREPARE p AS SELECT risk_score FROM account");
  (void)f.answer({"PREPARE"});
  f.materialize();
  // Simple Queries sent before any answer: the EXECUTE runs what the client's PREPARE makes.
  CHECK(f.sent_query("DEALLOCATE p") == "DEALLOCATE p");
  (void)f.sent_query("PREPARE p AS SELECT id FROM account");
  CHECK(f.sent_query("EXECUTE p") == "EXECUTE p");
  // Extended protocol, in one pipeline: the Bind goes as sent.
  (void)f.send(parse("", "DEALLOCATE ALL"));
  (void)f.send(bind("", ""));
  (void)f.send(execute(""));
  CHECK(types_of(f.send(parse("", "EXECUTE p"))) == "P");
  CHECK(types_of(f.send(bind("", ""))) == "B");
  for (const auto tag : {"DEALLOCATE", "PREPARE", "SELECT 6"}) {
    CHECK(f.complete(tag) == "forward");
    CHECK(f.ready() == "forward");
  }
  // Answered: p is the client's new statement, which reads no seed: nothing left to follow.
  CHECK(f.rewriting.prepared().sql_statements() == 0);
}

TEST_CASE("DEALLOCATE, DEALLOCATE ALL and DISCARD ALL end what the proxy follows") {
  Fixture f;
  for (const char* name : {"a", "b", "c"}) {
    (void)f.sent_query(std::string("PREPARE ") + name + " AS SELECT * FROM account");
    (void)f.answer({"PREPARE"});
  }
  CHECK(f.rewriting.prepared().sql_statements() == 3);
  (void)f.sent_query("DEALLOCATE a");
  CHECK(f.rewriting.prepared().sql_statements() == 3);  // until PostgreSQL answers it
  (void)f.answer({"DEALLOCATE"});
  CHECK(f.rewriting.prepared().sql_statements() == 2);
  (void)f.sent_query("DEALLOCATE ALL");
  (void)f.answer({"DEALLOCATE ALL"});
  CHECK(f.rewriting.prepared().sql_statements() == 0);
  (void)f.sent_query("PREPARE d AS SELECT * FROM account");
  (void)f.answer({"PREPARE"});
  (void)f.sent_query("DISCARD ALL");
  (void)f.answer({"DISCARD ALL"});
  CHECK(f.rewriting.prepared().sql_statements() == 0);
  f.materialize();
  CHECK(f.sent_query("EXECUTE d") == "EXECUTE d");  // nothing to prepare again: PostgreSQL's error
}

TEST_CASE("a temporary table named like a seeded table hides it while it exists") {
  Fixture f;
  CHECK(f.rewritten("SELECT * FROM account"));
  (void)f.sent_query("CREATE TEMP TABLE account (id int, note text)");
  (void)f.answer({"CREATE TABLE"});
  CHECK(!f.rewritten("SELECT * FROM account"));
  CHECK(f.rewritten("SELECT * FROM public.account"));
  (void)f.sent_query("DROP TABLE account");
  (void)f.answer({"DROP TABLE"});
  CHECK(f.rewritten("SELECT * FROM account"));

  SUBCASE("created in an open transaction: there until it ends") {
    (void)f.sent_query("BEGIN");
    (void)f.answer({"BEGIN"}, 'T');
    (void)f.sent_query("CREATE TEMP TABLE account (id int)");
    (void)f.answer({"CREATE TABLE"}, 'T');
    CHECK(!f.rewritten("SELECT * FROM account", 'T'));
    (void)f.sent_query("COMMIT");
    (void)f.answer({"COMMIT"});
    CHECK(!f.rewritten("SELECT * FROM account"));
  }
  SUBCASE("ROLLBACK") {
    (void)f.sent_query("BEGIN; CREATE TEMP TABLE account (id int)");
    (void)f.answer({"BEGIN", "CREATE TABLE"}, 'T');
    (void)f.sent_query("ROLLBACK");
    (void)f.answer({"ROLLBACK"});
    CHECK(f.rewritten("SELECT * FROM account"));
  }
  SUBCASE("an error in the implicit transaction of a Query undoes it") {
    (void)f.sent_query("CREATE TEMP TABLE account (id int); SELECT 1/0");
    CHECK(f.complete("CREATE TABLE") == "forward");
    (void)f.receive(server_error("22012", "division by zero"));
    (void)f.ready();
    CHECK(f.rewritten("SELECT * FROM account"));
  }
  SUBCASE("ON COMMIT DROP: gone when its transaction commits") {
    (void)f.sent_query("BEGIN; CREATE TEMP TABLE account (id int) ON COMMIT DROP");
    (void)f.answer({"BEGIN", "CREATE TABLE"}, 'T');
    const auto sent = f.sent_query("SELECT * FROM account");
    CHECK(sent == "SELECT * FROM account");
    (void)f.answer({"SELECT 0"}, 'T');
    (void)f.sent_query("COMMIT");
    (void)f.answer({"COMMIT"});
    CHECK(f.rewritten("SELECT * FROM account"));
  }
  SUBCASE("DISCARD TEMP and DISCARD ALL") {
    for (const char* discard : {"DISCARD TEMP", "DISCARD ALL"}) {
      (void)f.sent_query("CREATE TEMP TABLE account (id int)");
      (void)f.answer({"CREATE TABLE"});
      CHECK(!f.rewritten("SELECT * FROM account"));
      (void)f.sent_query(discard);
      (void)f.answer({discard});
      CHECK(f.rewritten("SELECT * FROM account"));
    }
  }
  SUBCASE("a CREATE that fails creates nothing") {
    (void)f.sent_query("CREATE TEMP TABLE account (id nosuchtype)");
    (void)f.receive(server_error(sqlstate::undefined_object, "type \"nosuchtype\" does not exist"));
    (void)f.ready();
    CHECK(f.rewritten("SELECT * FROM account"));
  }
}

TEST_CASE("the rewrite cache does not serve one session's temporary table to another") {
  Fixture f;
  StatementRewriting other{f.snapshots, "app", "alice", max_statement_bytes, std::nullopt};
  (void)f.sent_query("CREATE TEMP TABLE account (id int)");
  (void)f.answer({"CREATE TABLE"});
  CHECK(!f.rewritten("SELECT * FROM account"));
  // Same thread, same text, same snapshot and search_path: the other session has no such table.
  CHECK(other.client_message(query("SELECT * FROM account")).has_value());
}
