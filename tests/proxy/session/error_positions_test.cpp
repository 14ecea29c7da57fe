// Error and notice positions given back in the client's text: the session knows which client
// message each ErrorResponse and NoticeResponse answers (a Query until its ReadyForQuery; Parse,
// Bind, Describe, Execute, Close in a pipeline, up to the Sync after an error) and maps the 'P'
// field through that message's splice map, or drops it where the client's text has no such
// place. No sockets, no database.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "common/sqlstate.hpp"
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

struct Fixture {
  FakeSnapshots snapshots;
  StatementRewriting rewriting{snapshots, "app", "alice", max_statement_bytes, std::nullopt};
  Fixture() {
    snapshots.publish(
        {{"public", "account", {"id", "owner", "balance", "credit_limit"}}},
        {{"public", "account", "risk_score", "numeric", "balance / 1000.0", Phase::virtual_}});
  }

  // The text PostgreSQL receives for a client Query or Parse (the client's when not replaced).
  std::string sent_text(const ByteVector& message) {
    const auto replaced = rewriting.client_message(message);
    const auto messages = split_messages(replaced ? *replaced : message);
    const auto& last = messages.back();
    if (last.type == 'Q') return std::string(protocol::read_query(last.bytes())->sql);
    return std::string(protocol::read_parse(last.bytes())->sql);
  }
  void send(const ByteVector& message) { (void)rewriting.client_message(message); }

  // A server message as the session hands it over; nullopt: forwarded as it came.
  std::optional<ByteVector> receive(const ByteVector& message) {
    rewriting.server_started(static_cast<char>(message[0]));
    return rewriting.server_message(message);
  }
  void receive_all(std::string_view types) {
    for (const char type : types) {
      const auto forwarded = receive(type == 'Z' ? ready_for_query('I') : Body().message(type));
      REQUIRE((!forwarded || !forwarded->empty()));
    }
  }
};

// 1-based character position of `needle` in `text`, as PostgreSQL reports positions (ASCII here).
int position_of(std::string_view text, std::string_view needle, std::size_t from = 0) {
  const auto at = text.find(needle, from);
  REQUIRE(at != std::string_view::npos);
  return static_cast<int>(at) + 1;
}

ByteVector error_at(int position, char type = 'E',
                    std::string_view code = sqlstate::undefined_column) {
  return Body()
      .u8('S')
      .cstring(type == 'E' ? "ERROR" : "WARNING")
      .u8('C')
      .cstring(code)
      .u8('M')
      .cstring("something")
      .u8('P')
      .cstring(std::to_string(position))
      .u8('H')
      .cstring("a hint")
      .u8(0)
      .message(type);
}

// The 'P' field the client receives for a server message carrying `position` ("" when none).
std::string client_sees(Fixture& f, int position, char type = 'E') {
  const auto message = error_at(position, type);
  const auto forwarded = f.receive(message);
  const auto messages = split_messages(forwarded ? *forwarded : message);
  REQUIRE(messages.size() == 1);
  CHECK(messages[0].type == type);
  const auto fields = protocol::read_error_notice(messages[0].bytes());
  REQUIRE(fields);
  CHECK(fields->hint == "a hint");  // every other field as PostgreSQL sent it
  return std::string(fields->position);
}

}  // namespace

TEST_CASE("a Query's error points into the client's text, not the rewritten one") {
  Fixture f;
  const std::string client = "SELECT risk_score, nosuch FROM account WHERE id = 1";
  const auto sent = f.sent_text(query(client));
  REQUIRE(sent != client);
  CHECK(client_sees(f, position_of(sent, "nosuch")) ==
        std::to_string(position_of(client, "nosuch")));
  // Inside the expression: the reference it replaced.
  CHECK(client_sees(f, position_of(sent, "balance")) ==
        std::to_string(position_of(client, "risk_score")));
  // Past the end: PostgreSQL's "at end of input", past the client's end.
  CHECK(client_sees(f, static_cast<int>(sent.size()) + 1) == std::to_string(client.size() + 1));
  f.receive_all("Z");

  // A text sent as written keeps PostgreSQL's position byte for byte.
  f.send(query("SELECT nosuch FROM account"));
  CHECK(!f.receive(error_at(8)));
  f.receive_all("Z");
}

TEST_CASE("TABLE t spelled out: a position inside its columns is none of the client's") {
  Fixture f;
  const std::string client = "VALUES (1,2) UNION ALL TABLE account";
  const auto sent = f.sent_text(query(client));
  REQUIRE(sent != client);
  // PostgreSQL gives the columns of TABLE's '*' no position: the client gets none either.
  CHECK(client_sees(f, position_of(sent, "balance", position_of(sent, "UNION"))) == "");
  // Before the expansion, positions are the client's.
  CHECK(client_sees(f, position_of(sent, "UNION")) == std::to_string(position_of(client, "UNION")));
  f.receive_all("Z");
}

TEST_CASE("a Parse's error is mapped through that Parse's own splice map") {
  Fixture f;
  const std::string client = "SELECT a.risk_score, a.nosuch FROM account a WHERE a.id = $1";
  const auto sent = f.sent_text(parse("s1", client));
  f.send(sync_message());
  CHECK(client_sees(f, position_of(sent, "nosuch")) ==
        std::to_string(position_of(client, "nosuch")));
  f.receive_all("Z");
}

TEST_CASE("a pipeline: each error and notice is mapped for the message it answers") {
  Fixture f;
  // Two rewritten statements of different lengths, then a third sent as written.
  const std::string first = "SELECT risk_score FROM account WHERE id = $1";
  const std::string second = "SELECT id, risk_score, risk_score AS again, nosuch FROM account";
  const auto sent_first = f.sent_text(parse("s1", first));
  f.send(bind("", "s1"));
  f.send(describe_statement("s1"));
  f.send(execute(""));
  const auto sent_second = f.sent_text(parse("s2", second));
  f.send(bind("", "s2"));
  f.send(execute(""));
  f.send(sync_message());
  f.send(parse("s3", "SELECT nosuch"));
  f.send(sync_message());

  // s1: ParseComplete, BindComplete, ParameterDescription + RowDescription, a notice while it
  // runs, rows, CommandComplete.
  f.receive_all("12tT");
  CHECK(client_sees(f, position_of(sent_first, "FROM"), 'N') ==
        std::to_string(position_of(first, "FROM")));
  f.receive_all("DC");
  // s2's Parse fails: mapped through s2's map, though s1's was the last one used.
  CHECK(client_sees(f, position_of(sent_second, "nosuch")) ==
        std::to_string(position_of(second, "nosuch")));
  // PostgreSQL skipped s2's Bind and Execute; the Sync answers. The next batch is on its own:
  // s3 was sent as written, so its position stays.
  f.receive_all("Z");
  CHECK(client_sees(f, 8) == "8");
  f.receive_all("Z");
  CHECK(f.rewriting.prepared().outstanding() == 0);
}

TEST_CASE("an Execute's error counts in the text of the statement its portal was bound from") {
  Fixture f;
  const std::string client = "SELECT risk_score / 0 FROM account";
  const auto sent = f.sent_text(parse("", client));
  f.send(bind("p", ""));
  f.send(parse("", "SELECT 1"));  // the unnamed statement changes; portal p keeps its text
  f.send(execute("p"));
  f.send(sync_message());
  f.receive_all("121");
  CHECK(client_sees(f, position_of(sent, "/ 0")) == std::to_string(position_of(client, "/ 0")));
  f.receive_all("Z");
}

TEST_CASE("an error answering the proxy's re-Parse counts in the client's text it re-Parsed") {
  Fixture f;
  const std::string client = "SELECT risk_score FROM account";
  (void)f.sent_text(parse("s1", client));
  f.send(sync_message());
  f.receive_all("1Z");
  // The seed is rolled back: the re-Parse of the client's text fails at risk_score.
  f.snapshots.publish({{"public", "account", {"id", "owner", "balance", "credit_limit"}}}, {});
  const auto replaced = f.rewriting.client_message(bind("", "s1"));
  REQUIRE(replaced);
  CHECK(types_of(split_messages(*replaced)) == "CPB");
  f.send(execute(""));
  f.send(sync_message());
  const auto dropped = f.receive(close_complete());
  CHECK((dropped && dropped->empty()));
  // The injected Parse's error reaches the client in place of its Bind's answer; the text
  // re-Parsed is the client's own now, so PostgreSQL's position is the client's.
  CHECK(client_sees(f, 8) == "8");
  f.receive_all("Z");
}
