// DdlSeeds against a fake SnapshotSource: a generated-column ALTER TABLE is held while the seed
// is registered, then answered by a stand-in statement; a refusal comes back as the verdict's
// error at the right position. No sockets, no database.
#include "proxy/session/ddl_seeds.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <string>

#include "common/sqlstate.hpp"
#include "proxy/session/statement_rewriting.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "tests/proxy/session/fake_snapshots.hpp"

namespace {

using namespace seedproxy;
using namespace seedproxy::test;
using proxy::DdlSeeds;
using proxy::StatementRewriting;
using Verdict = seeds::DdlSeedVerdict;

constexpr std::size_t max_statement_bytes = 1u << 20;
constexpr std::string_view add_score =
    "ALTER TABLE account ADD COLUMN score numeric GENERATED ALWAYS AS (balance * 2) STORED";

struct Fixture {
  FakeSnapshots snapshots;
  StatementRewriting rewriting;
  DdlSeeds ddl;
  Fixture()
      : rewriting((snapshots.publish({{"public", "account", {"id", "balance"}}}, {}), snapshots),
                  "app", "alice", max_statement_bytes, std::nullopt),
        ddl(snapshots, "app", max_statement_bytes) {}

  std::optional<ByteVector> client(const ByteVector& message, char status = 'I') {
    return ddl.client_message(message, rewriting, status);
  }
  // A client message that is no DDL seed, through both as the session hands it over.
  void relay(const ByteVector& message) {
    REQUIRE_FALSE(client(message));
    REQUIRE_FALSE(ddl.waiting());
    (void)rewriting.client_message(message);
  }
  // Hands `message` in, answers the job with `verdict`, hands it in again: the replacement.
  std::optional<ByteVector> decided(const ByteVector& message, Verdict verdict) {
    CHECK_FALSE(client(message));
    REQUIRE(ddl.waiting());
    REQUIRE(snapshots.jobs.size() == 1);
    snapshots.jobs.back()->verdict = std::move(verdict);
    snapshots.jobs.back()->done.complete();
    CHECK(ddl.waiting());  // until the message is handed in again
    auto out = client(message);
    CHECK_FALSE(ddl.waiting());
    return out;
  }
};

Verdict verdict(Verdict::Kind kind, std::string code = {}, std::string message = {},
                int position = 0) {
  return {kind, std::move(code), std::move(message), position};
}

std::string only_query_text(const ByteVector& bytes) {
  const auto messages = split_messages(bytes);
  REQUIRE(types_of(messages) == "Q");
  return std::string(protocol::read_query(messages[0].bytes())->sql);
}

}  // namespace

TEST_CASE("the statement is held and handed to the registry with the session's search_path") {
  Fixture f;
  f.relay(query("SET search_path = app, public"));
  CHECK_FALSE(f.client(query(add_score)));
  CHECK(f.ddl.waiting());
  REQUIRE(f.snapshots.jobs.size() == 1);
  const auto& request = f.snapshots.jobs[0]->request;
  CHECK(request.seed.database == "app");
  CHECK(request.seed.entity.empty());  // unqualified: resolved through the search_path
  CHECK(request.table == "account");
  CHECK(request.seed.attribute == "\"score\"");
  CHECK(request.seed.type == "numeric");
  CHECK(request.seed.expression == "balance * 2");
  CHECK(request.search_path == std::vector<std::string>{"app", "public"});
  CHECK_FALSE(request.if_exists);
  CHECK_FALSE(request.if_not_exists);

  Fixture qualified;
  CHECK_FALSE(qualified.client(
      query("ALTER TABLE IF EXISTS \"Bank\".account ADD COLUMN IF NOT EXISTS s int "
            "GENERATED ALWAYS AS (id) STORED")));
  REQUIRE(qualified.snapshots.jobs.size() == 1);
  CHECK(qualified.snapshots.jobs[0]->request.seed.entity == "\"Bank\".account");
  CHECK(qualified.snapshots.jobs[0]->request.if_exists);
  CHECK(qualified.snapshots.jobs[0]->request.if_not_exists);
}

TEST_CASE("other statements, and any statement in a failed transaction, go on as usual") {
  Fixture f;
  CHECK_FALSE(f.client(query("SELECT 'generated'")));
  CHECK_FALSE(f.client(query("ALTER TABLE account ADD COLUMN s int")));
  CHECK_FALSE(
      f.client(parse("", "ALTER TABLE account ADD COLUMN s int GENERATED ALWAYS AS IDENTITY")));
  CHECK_FALSE(f.client(bind("", "")));
  CHECK_FALSE(f.client(query(add_score), 'E'));  // PostgreSQL refuses it itself
  CHECK_FALSE(f.ddl.waiting());
  CHECK(f.snapshots.jobs.empty());
}

TEST_CASE("registered: a stand-in that completes as ALTER TABLE; its notice is dropped") {
  Fixture f;
  const auto sent = f.decided(query(add_score), verdict(Verdict::Kind::registered));
  REQUIRE(sent);
  const auto text = only_query_text(*sent);
  CHECK(text.starts_with("ALTER TABLE IF EXISTS \"seedproxy ddl seed "));
  const auto table = quoted_name_from(text, "seedproxy ddl seed ");

  // PostgreSQL skips the missing stand-in table with a notice naming it: the client never sees it.
  const auto notice = f.ddl.server_message(server_error(
      sqlstate::undefined_table, "relation \"" + table + "\" does not exist, skipping", 'N'));
  REQUIRE(notice);
  CHECK(notice->empty());
  // Other notices pass.
  CHECK_FALSE(f.ddl.server_message(server_error(
      sqlstate::undefined_table, "relation \"elsewhere\" does not exist, skipping", 'N')));
  CHECK_FALSE(f.ddl.server_message(command_complete("ALTER TABLE")));
}

TEST_CASE("already registered with IF NOT EXISTS: answered the same way") {
  Fixture f;
  const auto sent = f.decided(query(add_score), verdict(Verdict::Kind::already));
  REQUIRE(sent);
  CHECK(only_query_text(*sent).starts_with("ALTER TABLE IF EXISTS \"seedproxy ddl seed "));
}

TEST_CASE("pass_through: PostgreSQL answers the client's own statement") {
  Fixture f;
  CHECK_FALSE(f.decided(query(add_score), verdict(Verdict::Kind::pass_through)));
}

TEST_CASE("refused: a marker statement whose error comes back as the verdict's, unpositioned") {
  Fixture f;
  // The expression "q1" also begins the table's name, where a search for it would land.
  const std::string sql = "ALTER TABLE q1_log ADD COLUMN s int8 GENERATED ALWAYS AS (q1) STORED";
  const auto sent =
      f.decided(query(sql), verdict(Verdict::Kind::refused, sqlstate::undefined_column,
                                    "column \"q1\" does not exist", 1));
  REQUIRE(sent);
  const auto text = only_query_text(*sent);
  // A comment first, so PostgreSQL's log says what happened in words.
  CHECK(
      text.starts_with("/* seedproxy refused the client's statement here and answered it with "
                       "ERROR 42703: column \"q1\" does not exist."));
  CHECK(text.find("*/ SELECT \"" + std::string(rewriter::refusal_marker_prefix)) !=
        std::string::npos);
  const auto marker = quoted_name_from(text, rewriter::refusal_marker_prefix);

  CHECK_FALSE(f.ddl.server_message(
      server_error(sqlstate::undefined_column, "column \"other\" does not exist")));
  const auto swapped = f.ddl.server_message(
      server_error(sqlstate::undefined_column, "column \"" + marker + "\" does not exist"));
  REQUIRE(swapped);
  const auto messages = split_messages(*swapped);
  REQUIRE(types_of(messages) == "E");
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  REQUIRE(fields);
  CHECK(fields->code == sqlstate::undefined_column);
  CHECK(fields->message == "column \"q1\" does not exist");
  // PostgreSQL 15 gives an error in a generation expression of ALTER TABLE no position (the
  // twin's ALTER TABLE in tests/e2e/test_error_positions.py): neither does the proxy.
  CHECK(fields->position.empty());
  // Once.
  CHECK_FALSE(f.ddl.server_message(
      server_error(sqlstate::undefined_column, "column \"" + marker + "\" does not exist")));
}

TEST_CASE("a Parse keeps its statement name and parameter types in the stand-in") {
  Fixture f;
  const auto message = Body().cstring("ddl1").cstring(add_score).u16(1).u32(23).message('P');
  const auto sent = f.decided(message, verdict(Verdict::Kind::refused, sqlstate::duplicate_column,
                                               "column \"score\" already exists"));
  REQUIRE(sent);
  const auto messages = split_messages(*sent);
  REQUIRE(types_of(messages) == "P");
  const auto parse = protocol::read_parse(messages[0].bytes());
  REQUIRE(parse);
  CHECK(parse->name == "ddl1");
  CHECK(parse->sql.find("*/ SELECT \"") != std::string_view::npos);
  CHECK(parse->parameter_count == 1);
  CHECK(parse->parameter_types.size() == 6);
}

TEST_CASE("a wait given up before the verdict refuses with 57014") {
  Fixture f;
  CHECK_FALSE(f.client(query(add_score)));
  REQUIRE(f.ddl.waiting());
  // No verdict: the session's wait ended (timeout or cancel) and hands the message in again.
  const auto sent = f.client(query(add_score));
  REQUIRE(sent);
  CHECK_FALSE(f.ddl.waiting());
  const auto marker = quoted_name_from(only_query_text(*sent), rewriter::refusal_marker_prefix);
  const auto swapped = f.ddl.server_message(
      server_error(sqlstate::undefined_column, "column \"" + marker + "\" does not exist"));
  REQUIRE(swapped);
  const auto messages = split_messages(*swapped);
  REQUIRE(types_of(messages) == "E");
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  REQUIRE(fields);
  CHECK(fields->code == sqlstate::query_canceled);
  CHECK(fields->message.find("SHOW SEEDS") != std::string_view::npos);
}

TEST_CASE("wait() returns once the verdict is in") {
  Fixture f;
  CHECK_FALSE(f.client(query(add_score)));
  REQUIRE(f.snapshots.jobs.size() == 1);
  boost::asio::io_context io;
  bool finished = false;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        co_await f.ddl.wait();
        finished = true;
      },
      boost::asio::detached);
  io.run_for(std::chrono::milliseconds(20));
  CHECK_FALSE(finished);  // no verdict yet: still waiting
  f.snapshots.jobs[0]->verdict = verdict(Verdict::Kind::registered);
  f.snapshots.jobs[0]->done.complete();
  io.run_for(std::chrono::seconds(5));
  CHECK(finished);
  CHECK(f.client(query(add_score)));
}
