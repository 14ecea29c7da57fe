// catalog_effect: what each kind of statement changes in the resolver's catalog (nothing, named
// relations, or more than names can bound), and the cheap gate in front of the parser.
#include "rewriter/statements/catalog_effect.hpp"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "rewriter/splice/rewriter.hpp"

using seedproxy::rewriter::catalog_command_tag;
using seedproxy::rewriter::catalog_effect;
using seedproxy::rewriter::CatalogEffect;
using seedproxy::rewriter::depends_on_catalog;
using seedproxy::rewriter::might_change_catalog;

namespace {

CatalogEffect named(std::vector<std::string> names) {
  CatalogEffect effect;
  for (auto& name : names) effect.add_name(std::move(name));
  return effect;
}
const CatalogEffect nothing{};
const CatalogEffect everything{true, {}, {}};

}  // namespace

TEST_CASE("statements that add, drop or rename relations or their columns name them") {
  const std::pair<const char*, CatalogEffect> cases[] = {
      {"CREATE TABLE t (a int)", named({"t"})},
      {"create table S.\"Mixed\" (a int) inherits (parent)", named({"Mixed"})},
      {"CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1)", named({"p1"})},
      {"CREATE UNLOGGED TABLE u (a int)", named({"u"})},
      {"CREATE FOREIGN TABLE ft (a int) SERVER s", named({"ft"})},
      {"CREATE TABLE c AS SELECT 1 AS a", named({"c"})},
      {"CREATE MATERIALIZED VIEW mv AS SELECT 1", named({"mv"})},
      {"SELECT * INTO copy FROM account", named({"copy"})},
      {"WITH x AS (SELECT 1) SELECT * INTO y FROM x", named({"y"})},
      {"CREATE OR REPLACE VIEW v AS SELECT 1 AS a", named({"v"})},
      {"ALTER TABLE account ADD COLUMN note text", named({"account"})},
      {"ALTER TABLE ONLY account DROP COLUMN note", named({"account"})},
      {"ALTER TABLE account ADD COLUMN a int, ADD CONSTRAINT c CHECK (a > 0)", named({"account"})},
      {"ALTER VIEW v RENAME COLUMN a TO b", named({"v"})},
      {"ALTER TABLE account RENAME TO ledger", named({"account", "ledger"})},
      {"ALTER TABLE account RENAME COLUMN balance TO amount", named({"account"})},
      {"ALTER TABLE account SET SCHEMA archive", named({"account"})},
      {"DROP TABLE a, s.b", named({"a", "b"})},
      {"DROP VIEW IF EXISTS v", named({"v"})},
      {"CREATE SCHEMA s CREATE TABLE q (a int) CREATE VIEW w AS SELECT 1", named({"q", "w"})},
      {"EXPLAIN ANALYZE CREATE TABLE e AS SELECT 1", named({"e"})},
      {"CREATE TABLE a (x int); CREATE TABLE b (y int)", named({"a", "b"})},
  };
  for (const auto& [sql, expected] : cases) {
    CAPTURE(sql);
    CHECK(might_change_catalog(sql));
    CHECK(catalog_effect(sql) == expected);
  }
}

TEST_CASE("what names cannot bound reads the whole catalog again") {
  for (const char* sql :
       {"DROP TABLE a CASCADE", "ALTER TABLE a DROP COLUMN b CASCADE", "DROP SCHEMA s",
        "DROP TYPE t CASCADE", "DROP FUNCTION f() CASCADE", "ALTER SCHEMA s RENAME TO r",
        "ALTER TYPE ct ADD ATTRIBUTE z int CASCADE", "ALTER TYPE ct RENAME ATTRIBUTE a TO b",
        "DROP OWNED BY alice", "CREATE EXTENSION hstore", "DROP EXTENSION hstore",
        "IMPORT FOREIGN SCHEMA s FROM SERVER f INTO public", "DO $$ BEGIN END $$",
        "CALL maintain()"}) {
    CAPTURE(sql);
    CHECK(catalog_effect(sql) == everything);
  }
}

TEST_CASE("DDL that leaves relation names and columns alone changes nothing the resolver reads") {
  for (const char* sql : {"CREATE INDEX ON account (balance)",
                          "DROP INDEX account_balance_idx",
                          "ALTER TABLE account ADD CONSTRAINT positive CHECK (balance > 0)",
                          "ALTER TABLE account ALTER COLUMN balance TYPE bigint",
                          "ALTER TABLE account OWNER TO bob",
                          "ALTER TABLE account RENAME CONSTRAINT c TO d",
                          "ALTER INDEX i RENAME TO j",
                          "CREATE TEMP TABLE scratch (a int)",
                          "CREATE TABLE pg_temp.scratch (a int)",
                          "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
                          "DROP FUNCTION f()",
                          "CREATE SEQUENCE s",
                          "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW EXECUTE FUNCTION f()",
                          "CREATE SCHEMA empty",
                          "ALTER TABLE account ATTACH PARTITION p FOR VALUES IN (1)",
                          "CREATE TYPE pair AS (a int, b int)",
                          "DROP DATABASE other",
                          "CREATE TABLE broken (",
                          "SELECT 1",
                          "INSERT INTO account SELECT * FROM staging"}) {
    CAPTURE(sql);
    CHECK(catalog_effect(sql) == nothing);
  }
}

TEST_CASE("the gate looks at each statement's first word, past comments and parentheses") {
  CHECK_FALSE(might_change_catalog("SELECT created_at, dropped FROM alterations"));
  CHECK_FALSE(might_change_catalog("INSERT INTO t VALUES ('create table x (a int)')"));
  CHECK_FALSE(might_change_catalog("UPDATE t SET a = 1 WHERE b IN (SELECT c FROM d)"));
  CHECK_FALSE(might_change_catalog("INSERT INTO t SELECT * FROM u ON CONFLICT DO NOTHING"));
  CHECK_FALSE(might_change_catalog(""));
  CHECK(might_change_catalog("  -- a migration\n/* step /* nested */ 1 */ CREATE TABLE t (a int)"));
  CHECK(might_change_catalog("SELECT 1; alter table t add column b int"));
  CHECK(might_change_catalog("(SELECT 1 INTO t)"));
  // A ';' inside a literal only adds a chunk: a false alarm the parser then clears.
  CHECK(might_change_catalog("INSERT INTO t VALUES ('a; drop table x')"));
  CHECK(catalog_effect("INSERT INTO t VALUES ('a; drop table x')") == nothing);
}

TEST_CASE("CommandComplete tags of statements that may change the catalog") {
  for (const char* tag :
       {"CREATE TABLE", "ALTER TABLE", "DROP VIEW", "IMPORT FOREIGN SCHEMA", "DO", "CALL"})
    CHECK(catalog_command_tag(tag));
  for (const char* tag : {"SELECT 1", "INSERT 0 1", "COMMIT", "SET", "COPY 3"})
    CHECK_FALSE(catalog_command_tag(tag));
}

TEST_CASE("effects merge: names sorted and once, everything wins") {
  auto effect = named({"b", "a"});
  effect.merge(named({"a", "c"}));
  CHECK(effect.names == std::vector<std::string>{"a", "b", "c"});
  CHECK_FALSE(effect.everything);
  effect.merge(everything);
  CHECK(effect.everything);
  CHECK_FALSE(effect.empty());
  CHECK(nothing.empty());
}

TEST_CASE("only texts with a statement the resolver reads can depend on the catalog") {
  for (const char* sql :
       {"SELECT 1", "select a from t; alter table t add column b int",
        "WITH x AS (SELECT 1) TABLE x", "INSERT INTO t VALUES (1)", "UPDATE t SET a = 1",
        "DELETE FROM t", "COPY t TO STDOUT", "EXPLAIN SELECT * FROM t",
        "PREPARE p AS SELECT * FROM t", "CREATE VIEW v AS SELECT * FROM t",
        "CREATE TABLE c AS SELECT * FROM t", "DECLARE c CURSOR FOR SELECT * FROM t",
        "CREATE RULE r AS ON INSERT TO t DO ALSO SELECT 1",
        "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE"}) {
    CAPTURE(sql);
    CHECK(depends_on_catalog(sql));
  }
  for (const char* sql :
       {"CREATE TABLE t (a int)", "ALTER TABLE t ADD COLUMN b int", "DROP TABLE t CASCADE",
        "BEGIN; ALTER TABLE t RENAME TO u; COMMIT", "CREATE INDEX ON t (a)", "SET search_path = s",
        "EXECUTE p", "not sql at all"}) {
    CAPTURE(sql);
    CHECK_FALSE(depends_on_catalog(sql));
  }
}
