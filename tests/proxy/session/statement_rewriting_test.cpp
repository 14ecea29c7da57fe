// StatementRewriting against a fake SnapshotSource, message by message as the session hands
// them over: the refusal swap, re-Parse of stale named statements, pipeline bookkeeping across
// errors, search_path tracking, DDL noticed, reads counted per execution. No sockets, no database.
#include "proxy/session/statement_rewriting.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/sqlstate.hpp"
#include "proxy/observe/observer.hpp"
#include "proxy/wire/backend_views.hpp"
#include "proxy/wire/frontend_views.hpp"
#include "rewriter/splice/rewriter.hpp"
#include "tests/proxy/session/fake_snapshots.hpp"

namespace {

using namespace seedproxy;
using namespace seedproxy::test;
using proxy::StatementRewriting;
using rewriter::Phase;

constexpr std::size_t max_statement_bytes = 1u << 20;
constexpr std::string_view select_score = "SELECT risk_score FROM account WHERE id = $1";

std::vector<rewriter::Relation> bank(bool with_column = false) {
  std::vector<std::string> columns{"id", "owner", "balance", "credit_limit"};
  if (with_column) columns.emplace_back("risk_score");  // added by materialization
  return {{"public", "account", columns}};
}
rewriter::SeedDefinition risk_score(Phase phase = Phase::virtual_) {
  return {"public", "account", "risk_score", "numeric", "balance / 1000.0", phase};
}

// The snapshot where clients read risk_score through the proxy's expression...
std::uint64_t publish_virtual(FakeSnapshots& snapshots) {
  return snapshots.publish(bank(), {risk_score()});
}
// ...and the one where it is a real column the proxy leaves alone.
std::uint64_t publish_materialized(FakeSnapshots& snapshots) {
  return snapshots.publish(bank(true), {risk_score(Phase::materialized)});
}

// The whole message as the session hands it over.
std::optional<ByteVector> client(StatementRewriting& rewriting, const ByteVector& message) {
  return rewriting.client_message(message);
}
// A server message as the session hands it over: its type as it starts, then the whole message.
std::optional<ByteVector> server(StatementRewriting& rewriting, const ByteVector& message) {
  rewriting.server_started(static_cast<char>(message[0]));
  return rewriting.server_message(message);
}
// True when the message is dropped (it answers a message the proxy injected).
bool dropped(StatementRewriting& rewriting, const ByteVector& message) {
  const auto replaced = server(rewriting, message);
  return replaced && replaced->empty();
}

// True when an error reaches the client as PostgreSQL sent it, but for its position: not
// swapped for the error of a refused statement.
bool not_swapped(const std::optional<ByteVector>& replaced) {
  if (!replaced) return true;
  const auto messages = split_messages(*replaced);
  if (messages.size() != 1) return false;
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  return fields && fields->code != sqlstate::generated_always;
}

std::string query_text(const ByteVector& message) {
  const auto messages = split_messages(message);
  REQUIRE(messages.size() == 1);
  REQUIRE(messages[0].type == 'Q');
  const auto view = protocol::read_query(messages[0].bytes());
  REQUIRE(view);
  return std::string(view->sql);
}

struct Observed final : proxy::Observer {
  std::vector<std::string> reads;  // "database entity attribute"
  int rewrites = 0;
  void client_accepted() noexcept override {}
  void client_refused() noexcept override {}
  void client_closed() noexcept override {}
  void upstream_connected(Duration) noexcept override {}
  void upstream_error(proxy::UpstreamStage) noexcept override {}
  void statement_started(proxy::StatementKind) noexcept override {}
  void statement_finished(proxy::StatementKind, Duration) noexcept override {}
  void statement_rewritten(Duration, bool) noexcept override { ++rewrites; }
  void attribute_read(std::string_view database, std::string_view entity,
                      std::string_view attribute) noexcept override {
    reads.push_back(std::string(database) + " " + std::string(entity) + " " +
                    std::string(attribute));
  }
  void protocol_error(proxy::Peer) noexcept override {}
};

}  // namespace

TEST_CASE("a write to a seed goes out as the marker statement; its 42703 comes back as 428C9") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);

  const auto sent = client(rewriting, query("INSERT INTO account (id, risk_score) VALUES (1, 2)"));
  REQUIRE(sent);
  const auto text = query_text(*sent);
  CHECK(text.find("INSERT") == std::string::npos);  // the write itself never reaches PostgreSQL
  const auto marker = quoted_name_from(text, rewriter::refusal_marker_prefix);

  // Errors that are not about the marker pass as PostgreSQL's own (only their position is given
  // back in the client's text), and leave the refusal remembered.
  CHECK(not_swapped(server(
      rewriting, server_error(sqlstate::undefined_column, "column \"nope\" does not exist"))));
  CHECK(not_swapped(
      server(rewriting, server_error(sqlstate::undefined_column,
                                     "column \"" + std::string(rewriter::refusal_marker_prefix) +
                                         "999999\" does not exist"))));
  CHECK(not_swapped(
      server(rewriting, server_error("23505", "column \"" + marker + "\" is a marker"))));

  const auto swapped = server(rewriting, server_error(sqlstate::undefined_column,
                                                      "column \"" + marker + "\" does not exist"));
  REQUIRE(swapped);
  const auto messages = split_messages(*swapped);
  REQUIRE(types_of(messages) == "E");
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  REQUIRE(fields);
  CHECK(fields->severity == "ERROR");
  CHECK(fields->code == sqlstate::generated_always);
  CHECK(fields->message == "cannot insert a non-DEFAULT value into column \"risk_score\"");
  CHECK(fields->detail == "Column \"risk_score\" is a generated column.");
  CHECK(fields->message.find(rewriter::refusal_marker_prefix) == std::string_view::npos);

  // Swapped once: the same error again is PostgreSQL's own.
  CHECK(not_swapped(server(rewriting, server_error(sqlstate::undefined_column,
                                                   "column \"" + marker + "\" does not exist"))));
}

TEST_CASE("a refused Parse keeps its name and parameter types; the error is swapped later") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);

  const auto message = Body()
                           .cstring("upd")
                           .cstring("UPDATE account SET risk_score = $1 WHERE id = $2")
                           .u16(2)
                           .u32(1700)
                           .u32(23)
                           .message('P');
  const auto sent = client(rewriting, message);
  REQUIRE(sent);
  const auto messages = split_messages(*sent);
  REQUIRE(types_of(messages) == "P");
  const auto parse = protocol::read_parse(messages[0].bytes());
  REQUIRE(parse);
  CHECK(parse->name == "upd");
  CHECK(parse->parameter_count == 2);
  const auto original = protocol::read_parse(protocol::Bytes(message).subspan(5));
  REQUIRE(original);
  CHECK(std::equal(parse->parameter_types.begin(), parse->parameter_types.end(),
                   original->parameter_types.begin(), original->parameter_types.end()));
  const auto marker = quoted_name_from(parse->sql, rewriter::refusal_marker_prefix);

  CHECK_FALSE(client(rewriting, sync_message()));
  // PostgreSQL fails the Parse at parse analysis: the ErrorResponse comes before ReadyForQuery.
  const auto error =
      server_error(sqlstate::undefined_column, "column \"" + marker + "\" does not exist");
  const auto swapped = server(rewriting, error);
  REQUIRE(swapped);
  const auto answer = split_messages(*swapped);
  REQUIRE(types_of(answer) == "E");
  const auto fields = protocol::read_error_notice(answer[0].bytes());
  REQUIRE(fields);
  CHECK(fields->code == sqlstate::generated_always);
  CHECK(fields->message == "column \"risk_score\" can only be updated to DEFAULT");
  CHECK_FALSE(dropped(rewriting, ready_for_query('I')));
}

TEST_CASE("a named statement prepared under an older snapshot is re-Parsed before Bind/Describe") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);

  const auto first = client(rewriting, parse("s1", select_score));
  REQUIRE(first);  // the virtual attribute became its expression
  const auto virtual_text =
      std::string(protocol::read_parse(split_messages(*first)[0].bytes())->sql);
  CHECK(virtual_text.find("balance") != std::string::npos);
  CHECK_FALSE(client(rewriting, sync_message()));
  CHECK_FALSE(dropped(rewriting, parse_complete()));  // the client's own ParseComplete
  CHECK_FALSE(dropped(rewriting, ready_for_query('I')));

  SUBCASE("Bind after the seed materialized: Close + Parse of the client's text, then its Bind") {
    publish_materialized(snapshots);
    const auto message = bind("", "s1");
    const auto sent = client(rewriting, message);
    REQUIRE(sent);
    const auto messages = split_messages(*sent);
    REQUIRE(types_of(messages) == "CPB");
    const auto close = protocol::read_close(messages[0].bytes());
    REQUIRE(close);
    CHECK(close->target == protocol::Target::statement);
    CHECK(close->name == "s1");
    const auto reparse = protocol::read_parse(messages[1].bytes());
    REQUIRE(reparse);
    CHECK(reparse->name == "s1");
    CHECK(reparse->sql == select_score);  // the column is real now: the client's own text
    CHECK(messages[2].body == ByteVector(message.begin() + 5, message.end()));  // Bind as sent
    CHECK_FALSE(client(rewriting, execute("")));
    CHECK_FALSE(client(rewriting, sync_message()));

    // The answers to the injected Close and Parse never reach the client; the rest do.
    CHECK(dropped(rewriting, close_complete()));
    CHECK(dropped(rewriting, parse_complete()));
    CHECK_FALSE(server(rewriting, command_complete("SELECT 1")));
    CHECK_FALSE(dropped(rewriting, ready_for_query('I')));

    // Up to date now: the next Bind goes as sent.
    CHECK_FALSE(client(rewriting, bind("", "s1")));
  }

  SUBCASE("Describe after a change: the re-Parse comes before the Describe") {
    publish_materialized(snapshots);
    const auto sent = client(rewriting, describe_statement("s1"));
    REQUIRE(sent);
    const auto messages = split_messages(*sent);
    REQUIRE(types_of(messages) == "CPD");
    CHECK(protocol::read_parse(messages[1].bytes())->sql == select_score);
    CHECK_FALSE(client(rewriting, sync_message()));
    CHECK(dropped(rewriting, close_complete()));
    CHECK(dropped(rewriting, parse_complete()));
    CHECK_FALSE(dropped(rewriting, ready_for_query('I')));
  }

  SUBCASE("a new snapshot that resolves the text the same way: nothing injected") {
    publish_virtual(snapshots);
    CHECK_FALSE(client(rewriting, bind("", "s1")));
    CHECK_FALSE(client(rewriting, describe_statement("s1")));
  }

  SUBCASE("the unnamed statement and statements closed by the client are not re-Parsed") {
    CHECK(client(rewriting, parse("", select_score)));
    CHECK_FALSE(client(rewriting, close_statement("s1")));
    CHECK_FALSE(client(rewriting, sync_message()));
    CHECK_FALSE(dropped(rewriting, parse_complete()));
    CHECK_FALSE(dropped(rewriting, close_complete()));
    CHECK_FALSE(dropped(rewriting, ready_for_query('I')));
    publish_materialized(snapshots);
    CHECK_FALSE(client(rewriting, bind("", "")));
    CHECK_FALSE(client(rewriting, bind("", "s1")));
  }
}

TEST_CASE("an error before Sync skips the injected Close and Parse; the next Bind re-Parses") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  REQUIRE(client(rewriting, parse("s1", select_score)));
  CHECK_FALSE(client(rewriting, sync_message()));
  CHECK_FALSE(dropped(rewriting, parse_complete()));
  CHECK_FALSE(dropped(rewriting, ready_for_query('I')));

  publish_materialized(snapshots);
  // One pipeline: a Parse PostgreSQL rejects, then a Bind of the stale statement (re-Parse
  // injected behind the failing Parse), Execute, Sync.
  CHECK_FALSE(client(rewriting, parse("", "SELEC 1")));
  const auto first = client(rewriting, bind("", "s1"));
  REQUIRE(first);
  CHECK(types_of(split_messages(*first)) == "CPB");
  CHECK_FALSE(client(rewriting, execute("")));
  CHECK_FALSE(client(rewriting, sync_message()));
  // PostgreSQL answers the bad Parse with an error and skips everything up to Sync, the injected
  // Close and Parse included: it still holds the old text under "s1".
  CHECK_FALSE(dropped(rewriting,
                      server_error(sqlstate::syntax_error, "syntax error at or near \"SELEC\"")));
  CHECK_FALSE(dropped(rewriting, ready_for_query('I')));

  // So the next Bind re-Parses again, though the snapshot has not changed since.
  const auto second = client(rewriting, bind("", "s1"));
  REQUIRE(second);
  CHECK(types_of(split_messages(*second)) == "CPB");
  CHECK_FALSE(client(rewriting, execute("")));
  CHECK_FALSE(client(rewriting, parse("s2", "SELECT 2")));
  CHECK_FALSE(client(rewriting, sync_message()));
  CHECK(dropped(rewriting, close_complete()));
  CHECK(dropped(rewriting, parse_complete()));
  // The client's own Parse of s2 in the same batch: answered, and forwarded.
  CHECK_FALSE(dropped(rewriting, parse_complete()));
  CHECK_FALSE(dropped(rewriting, ready_for_query('I')));
  CHECK_FALSE(client(rewriting, bind("", "s1")));
}

TEST_CASE("search_path: SET moves unqualified names, RESET returns to the startup value") {
  FakeSnapshots snapshots;
  snapshots.publish({{"ledger", "entry", {"id", "amount"}}},
                    {{"ledger", "entry", "cents", "bigint", "amount * 100", Phase::virtual_}});
  const auto select = query("SELECT cents FROM entry");

  SUBCASE("from the default \"$user\", public") {
    StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
    CHECK(rewriting.search_path() == std::vector<std::string>{"alice", "public"});
    CHECK_FALSE(client(rewriting, select));  // entry is not on the path: PostgreSQL's error

    CHECK_FALSE(client(rewriting, query("SET search_path TO ledger, public")));
    CHECK(rewriting.search_path() == std::vector<std::string>{"ledger", "public"});
    const auto sent = client(rewriting, select);
    REQUIRE(sent);
    CHECK(query_text(*sent).find("amount") != std::string::npos);

    CHECK_FALSE(client(rewriting, query("RESET search_path")));
    CHECK(rewriting.search_path() == std::vector<std::string>{"alice", "public"});
    CHECK_FALSE(client(rewriting, select));

    // A Parse of SET counts too (it is executed by the Execute that follows).
    CHECK_FALSE(client(rewriting, parse("", "SET search_path = ledger")));
    CHECK(rewriting.search_path() == std::vector<std::string>{"ledger"});
  }

  SUBCASE("from the startup packet's search_path") {
    StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes,
                                 std::string("ledger, \"$user\""));
    CHECK(rewriting.search_path() == std::vector<std::string>{"ledger", "alice"});
    CHECK(client(rewriting, select));
    CHECK_FALSE(client(rewriting, query("SET search_path = public")));
    CHECK_FALSE(client(rewriting, select));
    CHECK_FALSE(client(rewriting, query("RESET search_path")));
    CHECK(rewriting.search_path() == std::vector<std::string>{"ledger", "alice"});
  }

  SUBCASE("SET LOCAL lasts until ReadyForQuery says the transaction ended") {
    StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
    CHECK_FALSE(client(rewriting, query("BEGIN")));
    CHECK_FALSE(server(rewriting, ready_for_query('T')));
    CHECK_FALSE(client(rewriting, query("SET LOCAL search_path = ledger")));
    CHECK(rewriting.search_path() == std::vector<std::string>{"ledger"});
    CHECK_FALSE(server(rewriting, ready_for_query('T')));
    CHECK(client(rewriting, select));                      // still in the transaction
    CHECK_FALSE(server(rewriting, ready_for_query('E')));  // failed: still in it
    CHECK(rewriting.search_path() == std::vector<std::string>{"ledger"});
    CHECK_FALSE(client(rewriting, query("COMMIT")));
    CHECK_FALSE(server(rewriting, ready_for_query('I')));
    CHECK(rewriting.search_path() == std::vector<std::string>{"alice", "public"});
    CHECK_FALSE(client(rewriting, select));
  }
}

TEST_CASE(
    "search_path without a seed: followed for a seed that comes later, DISCARD ALL resets it") {
  // With no seed and nothing followed the session looks only for a search_path change; the rest
  // of the bookkeeping starts where a text gives it something to follow.
  FakeSnapshots snapshots;
  snapshots.publish({{"ledger", "entry", {"id", "amount"}}}, {});
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  const std::vector<std::string> initial{"alice", "public"};

  // The SET gives the session a setting; the DISCARD ALL after it in the same text resets it.
  CHECK_FALSE(client(rewriting, query("SET search_path TO ledger; DISCARD ALL")));
  CHECK(rewriting.search_path() == initial);
  CHECK_FALSE(client(rewriting, query("set Search_Path = ledger")));
  CHECK(rewriting.search_path() == std::vector<std::string>{"ledger"});
  CHECK_FALSE(client(rewriting, query("DISCARD ALL")));
  CHECK(rewriting.search_path() == initial);

  // Set while there was no seed, used by the first statement after one is declared.
  CHECK_FALSE(client(rewriting, parse("", "SET search_path TO ledger")));
  CHECK_FALSE(client(rewriting, query("SELECT amount FROM entry")));
  snapshots.publish({{"ledger", "entry", {"id", "amount"}}},
                    {{"ledger", "entry", "cents", "bigint", "amount * 100", Phase::virtual_}});
  const auto sent = client(rewriting, query("SELECT cents FROM entry"));
  REQUIRE(sent);
  CHECK(query_text(*sent).find("amount") != std::string::npos);
}

bool waits(StatementRewriting& rewriting, const ByteVector& bytes) {
  return rewriting.must_wait(bytes, true);
}

rewriter::CatalogEffect names(std::vector<std::string> list) {
  rewriter::CatalogEffect effect;
  for (auto& name : list) effect.add_name(std::move(name));
  return effect;
}

TEST_CASE("a first session waits for the database's first snapshot, whatever it sends") {
  FakeSnapshots snapshots;
  {
    StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
    CHECK(snapshots.watches == 1);
    CHECK(rewriting.catalog_pending());
    CHECK(waits(rewriting, query("SELECT 1")));
    publish_virtual(snapshots);
    snapshots.answer_refreshes();
    CHECK_FALSE(rewriting.catalog_pending());
    CHECK_FALSE(waits(rewriting, query("SELECT risk_score FROM account")));
  }
  CHECK(snapshots.unwatches == 1);  // the session's end is reported
}

TEST_CASE("DDL on a seeded database asks for a refresh of what it named, once it is committed") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  const auto select_seed = query("SELECT risk_score FROM account");

  // Statements and tags that change no relation ask for nothing.
  const std::pair<const char*, const char*> unchanged[] = {
      {"SELECT 1", "SELECT 1"},
      {"INSERT INTO account (id) VALUES (1)", "INSERT 0 1"},
      {"CREATE INDEX ON account (balance)", "CREATE INDEX"},
      {"COMMENT ON TABLE account IS 'x'", "COMMENT"},
      {"ALTER TABLE account ADD CONSTRAINT positive CHECK (balance > 0)", "ALTER TABLE"}};
  for (const auto& [sql, tag] : unchanged) {
    CAPTURE(sql);
    CHECK_FALSE(client(rewriting, query(sql)));
    CHECK_FALSE(server(rewriting, command_complete(tag)));
    CHECK_FALSE(server(rewriting, ready_for_query('I')));
  }
  CHECK(snapshots.refreshes_requested.empty());

  // ADD COLUMN: asked for at ReadyForQuery; the relation's name, not the whole catalog.
  CHECK_FALSE(client(rewriting, query("ALTER TABLE account ADD COLUMN note text")));
  CHECK_FALSE(server(rewriting, command_complete("ALTER TABLE")));
  CHECK(snapshots.refreshes_requested.empty());
  CHECK_FALSE(server(rewriting, ready_for_query('I')));
  REQUIRE(snapshots.effects_requested.size() == 1);
  CHECK(snapshots.effects_requested.back() == names({"account"}));
  CHECK(rewriting.catalog_pending());
  // Only a statement that could involve a seed waits for it; DDL and other queries go on.
  CHECK(waits(rewriting, select_seed));
  CHECK(waits(rewriting, query("SELECT 1; SELECT * FROM account")));
  CHECK_FALSE(waits(rewriting, query("CREATE TABLE other (a int)")));
  CHECK_FALSE(waits(rewriting, query("SELECT count(*) FROM ledger")));
  // Even DDL on the seeded table itself: the rewriter leaves it as sent, whatever the catalog.
  CHECK_FALSE(waits(rewriting, query("ALTER TABLE account ADD COLUMN memo text")));
  CHECK_FALSE(waits(rewriting, query("BEGIN; ALTER TABLE account DROP COLUMN note; COMMIT")));
  CHECK(waits(rewriting, query("ALTER TABLE account ADD COLUMN memo text; SELECT * FROM account")));
  CHECK(waits(rewriting, query("CREATE VIEW v AS SELECT risk_score FROM account")));
  // Bytes that do not begin at a message are not judged: they wait.
  CHECK(rewriting.must_wait(query("SELECT 1"), false));
  snapshots.answer_refreshes();
  CHECK_FALSE(waits(rewriting, select_seed));

  // Inside a transaction the change is not visible to another connection: asked for after COMMIT.
  CHECK_FALSE(client(rewriting, query("BEGIN")));
  CHECK_FALSE(server(rewriting, ready_for_query('T')));
  (void)client(rewriting, query("CREATE TABLE account_archive AS SELECT * FROM account"));
  CHECK_FALSE(server(rewriting, command_complete("SELECT 0")));
  CHECK_FALSE(server(rewriting, ready_for_query('T')));
  CHECK_FALSE(client(rewriting, query("ALTER TABLE ledger RENAME TO journal")));
  CHECK_FALSE(server(rewriting, ready_for_query('T')));
  CHECK(snapshots.effects_requested.size() == 1);
  CHECK_FALSE(client(rewriting, query("COMMIT")));
  CHECK_FALSE(server(rewriting, ready_for_query('I')));
  REQUIRE(snapshots.effects_requested.size() == 2);
  CHECK(snapshots.effects_requested.back() == names({"account_archive", "journal", "ledger"}));
  snapshots.answer_refreshes();

  // What names cannot bound reads everything again.
  CHECK_FALSE(client(rewriting, query("DROP TABLE ledger CASCADE")));
  CHECK_FALSE(server(rewriting, ready_for_query('I')));
  REQUIRE(snapshots.effects_requested.size() == 3);
  CHECK(snapshots.effects_requested.back().everything);
  snapshots.answer_refreshes();

  // A DDL tag whose text this session did not read (a statement prepared long before): all of it.
  CHECK_FALSE(server(rewriting, command_complete("ALTER TABLE")));
  CHECK_FALSE(server(rewriting, ready_for_query('I')));
  REQUIRE(snapshots.effects_requested.size() == 4);
  CHECK(snapshots.effects_requested.back().everything);
}

TEST_CASE("DDL on a database without seeds costs nothing") {
  FakeSnapshots snapshots;
  snapshots.publish(bank(), {});
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  for (const auto* sql : {"CREATE TABLE t (a int)", "ALTER TABLE account ADD COLUMN x int",
                          "DROP SCHEMA s CASCADE"}) {
    CHECK_FALSE(client(rewriting, query(sql)));
    CHECK_FALSE(server(rewriting, command_complete("DROP SCHEMA")));
    CHECK_FALSE(server(rewriting, ready_for_query('I')));
    CHECK_FALSE(waits(rewriting, query("SELECT * FROM account")));
  }
  CHECK(snapshots.refreshes_requested.empty());
}

TEST_CASE(
    "with its lease run out, a statement that touches seeds waits for a refresh, then is "
    "refused with 55000 naming the cause; other statements go on") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  snapshots.set_trusted(false);
  const auto select_seed = query("SELECT risk_score FROM account");

  CHECK_FALSE(waits(rewriting, query("SELECT 1")));
  CHECK(client(rewriting, query("SELECT balance FROM ledger")) == std::nullopt);
  // Refresh first...
  CHECK(waits(rewriting, select_seed));
  REQUIRE(snapshots.effects_requested.size() == 1);
  CHECK(snapshots.effects_requested.back().everything);
  snapshots.answer_refreshes();
  // ...and when that did not bring the lease back, no second wait within a second: refused.
  CHECK_FALSE(waits(rewriting, select_seed));
  const auto sent = client(rewriting, select_seed);
  REQUIRE(sent);
  const auto marker = quoted_name_from(query_text(*sent), rewriter::refusal_marker_prefix);
  const auto swapped = server(rewriting, server_error(sqlstate::undefined_column,
                                                      "column \"" + marker + "\" does not exist"));
  REQUIRE(swapped);
  const auto messages = split_messages(*swapped);
  REQUIRE(types_of(messages) == "E");
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  REQUIRE(fields);
  CHECK(fields->code == sqlstate::object_not_in_prerequisite_state);
  const std::string message(fields->message);
  CHECK(message.find("database \"app\"") != std::string::npos);
  CHECK(message.find("lease") != std::string::npos);
  CHECK(message.find("registry connection refused") != std::string::npos);

  // The lease renewed: served again.
  snapshots.set_trusted(true);
  CHECK_FALSE(waits(rewriting, select_seed));
  const auto again = client(rewriting, select_seed);
  REQUIRE(again);
  CHECK(query_text(*again).find(rewriter::refusal_marker_prefix) == std::string::npos);
}

TEST_CASE("reads of a seed are counted once per executed statement") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  Observed observed;
  rewriting.set_observer(observed);

  REQUIRE(client(rewriting, query("SELECT risk_score, risk_score + 1 FROM account")));
  CHECK(observed.reads == std::vector<std::string>{"app public.account risk_score"});

  // Extended protocol: counted at Execute, not at Parse or Bind; a portal executed again (a
  // suspended one) is the same execution.
  observed.reads.clear();
  REQUIRE(client(rewriting, parse("s1", select_score)));
  CHECK_FALSE(client(rewriting, bind("p1", "s1")));
  CHECK(observed.reads.empty());
  CHECK_FALSE(client(rewriting, execute("p1")));
  CHECK_FALSE(client(rewriting, execute("p1")));
  CHECK(observed.reads.size() == 1);
  CHECK_FALSE(client(rewriting, bind("", "s1")));
  CHECK_FALSE(client(rewriting, execute("")));
  CHECK(observed.reads.size() == 2);
  // A statement that reads no seed counts nothing.
  CHECK_FALSE(client(rewriting, parse("plain", "SELECT id FROM account")));
  CHECK_FALSE(client(rewriting, bind("", "plain")));
  CHECK_FALSE(client(rewriting, execute("")));
  CHECK(observed.reads.size() == 2);
  CHECK(observed.rewrites >= 3);
}

TEST_CASE("messages too long to hold are streamed: only their names keep the bookkeeping") {
  FakeSnapshots snapshots;
  publish_virtual(snapshots);
  StatementRewriting rewriting(snapshots, "app", "alice", max_statement_bytes, std::nullopt);
  REQUIRE(client(rewriting, parse("s1", select_score)));
  CHECK_FALSE(client(rewriting, sync_message()));
  CHECK_FALSE(dropped(rewriting, parse_complete()));
  CHECK_FALSE(dropped(rewriting, ready_for_query('I')));

  SUBCASE("a long Bind of a stale statement: Close and Parse go ahead of it") {
    publish_materialized(snapshots);
    // The head of a Bind whose parameter values run on: the names open it.
    auto head = bind("", "s1");
    head.resize(head.size() - 2);
    const auto before = rewriting.streamed_client_message(head);
    CHECK(types_of(split_messages(before)) == "CP");
    CHECK(rewriting.streamed_client_message(execute("")).empty());
    CHECK(rewriting.streamed_client_message(sync_message()).empty());
    CHECK(dropped(rewriting, close_complete()));
    CHECK(dropped(rewriting, parse_complete()));
    CHECK_FALSE(dropped(rewriting, ready_for_query('I')));
  }

  SUBCASE("a long Parse is answered like any other, between the proxy's own") {
    publish_materialized(snapshots);
    const auto sent = client(rewriting, bind("", "s1"));
    REQUIRE(sent);  // Close + Parse + Bind
    auto head = parse("big", "SELECT '" + std::string(100, 'x'));
    head.resize(head.size() - 10);
    CHECK(rewriting.streamed_client_message(head).empty());
    CHECK_FALSE(client(rewriting, sync_message()));
    CHECK(dropped(rewriting, close_complete()));
    CHECK(dropped(rewriting, parse_complete()));        // the proxy's re-Parse
    CHECK_FALSE(dropped(rewriting, parse_complete()));  // the long Parse's answer
    CHECK_FALSE(dropped(rewriting, ready_for_query('I')));
  }
}
