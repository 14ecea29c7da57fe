// read_session_statements: the statements of a text as PostgreSQL splits them, with the ones that
// change what a session holds (PREPARE, EXECUTE, DEALLOCATE, DISCARD, temporary relations) named.
#include "rewriter/statements/session_statements.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

using seedproxy::rewriter::read_session_statements;
using seedproxy::rewriter::SessionStatement;
using Kind = SessionStatement::Kind;

namespace {

SessionStatement only(std::string_view sql) {
  const auto statements = read_session_statements(sql);
  REQUIRE(statements.has_value());
  REQUIRE(statements->size() == 1);
  return statements->front();
}

}  // namespace

TEST_CASE("one entry per statement PostgreSQL runs, with its extent") {
  const std::string sql = " /* c */ SELECT 1 ;; PREPARE \"P q\" (int) AS SELECT $1 ; EXECUTE p(2)";
  const auto statements = read_session_statements(sql);
  REQUIRE(statements.has_value());
  REQUIRE(statements->size() == 3);  // the empty statement between ";;" is none
  CHECK((*statements)[0].kind == Kind::other);
  CHECK((*statements)[1].kind == Kind::prepare);
  CHECK((*statements)[1].name == "P q");
  CHECK(sql.substr((*statements)[1].begin, (*statements)[1].end - (*statements)[1].begin) ==
        " PREPARE \"P q\" (int) AS SELECT $1 ");
  CHECK((*statements)[2].kind == Kind::execute);
  CHECK((*statements)[2].name == "p");
  CHECK((*statements)[2].end == sql.size());
  CHECK(!read_session_statements("SELEC 1").has_value());
}

TEST_CASE("prepared statements: PREPARE, EXECUTE (also under EXPLAIN and CREATE TABLE AS)") {
  CHECK(only("prepare Stmt AS SELECT 1").name == "stmt");
  CHECK(only("EXPLAIN ANALYZE EXECUTE s(1)").kind == Kind::execute);
  CHECK(only("EXPLAIN ANALYZE EXECUTE s(1)").name == "s");
  CHECK(only("CREATE TABLE t AS EXECUTE s").kind == Kind::execute);
  CHECK(only("EXPLAIN SELECT 1").kind == Kind::other);
  CHECK(only("DEALLOCATE s1").kind == Kind::deallocate);
  CHECK(only("deallocate prepare Foo;").name == "foo");
  CHECK(only("DEALLOCATE \"all\"").kind == Kind::deallocate);
  CHECK(only("DEALLOCATE \"all\"").name == "all");
  CHECK(only("DEALLOCATE ALL").kind == Kind::deallocate_all);
  CHECK(only("DEALLOCATE PREPARE ALL").kind == Kind::deallocate_all);
  CHECK(only("-- x\ndiscard all").kind == Kind::discard_all);
  CHECK(only("DISCARD TEMPORARY").kind == Kind::discard_temp);
  CHECK(only("DISCARD PLANS").kind == Kind::other);
}

TEST_CASE("temporary relations created, and the names a DROP may take from them") {
  auto created = only("CREATE TEMP TABLE Account (id int) ON COMMIT DROP");
  CHECK(created.kind == Kind::create_temp);
  CHECK(created.name == "account");
  CHECK(created.on_commit_drop);
  for (const char* sql :
       {"CREATE TEMPORARY TABLE account (id int)", "CREATE TABLE pg_temp.account (id int)",
        "CREATE TEMP TABLE IF NOT EXISTS account (id int)", "CREATE TEMP VIEW account AS SELECT 1",
        "CREATE TEMP TABLE account AS SELECT 1", "SELECT 1 INTO TEMP account"}) {
    CAPTURE(sql);
    created = only(sql);
    CHECK(created.kind == Kind::create_temp);
    CHECK(created.name == "account");
    CHECK(!created.on_commit_drop);
  }
  CHECK(only("CREATE TABLE account (id int)").kind == Kind::other);
  CHECK(only("CREATE UNLOGGED TABLE account (id int)").kind == Kind::other);
  CHECK(only("SELECT 1 INTO account").kind == Kind::other);

  const auto dropped = only("DROP TABLE IF EXISTS account, public.b, pg_temp.c, x.y.z CASCADE");
  CHECK(dropped.kind == Kind::drop);
  CHECK(dropped.names == std::vector<std::string>{"account", "c"});
  CHECK(only("DROP VIEW v").kind == Kind::drop);
  CHECK(only("DROP SEQUENCE account").kind == Kind::other);
  CHECK(only("DROP TABLE public.account").kind == Kind::other);
}
