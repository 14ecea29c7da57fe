#!/usr/bin/python3
"""Seed validation (the Schema Seed Generator's rules) through `seedproxy --check-config` against a
real PostgreSQL: one seed per broken rule, injection attempts, volatile/stable/immutable user
functions, accepted seeds, unreachable databases - and the database unchanged afterwards."""

import json
import os
import subprocess
import tempfile
import unittest

import e2e_common
from harness.pgcluster import PgCluster, free_port
from harness.proxy import ProxyError, default_binary

pg: PgCluster = None
workdir: tempfile.TemporaryDirectory = None

SETUP = r"""
CREATE TABLE account (id int PRIMARY KEY, balance numeric NOT NULL, owner text, opened date NOT NULL);
INSERT INTO account VALUES (1, 100, 'ann', '2020-01-01'), (2, 250.5, 'bob', '2021-06-30'),
                           (3, 0, NULL, '2022-12-31');
CREATE TABLE txn (id int PRIMARY KEY, account_id int NOT NULL, amount numeric NOT NULL);
INSERT INTO txn VALUES (1, 1, 10), (2, 1, -5), (3, 2, 7);
CREATE TABLE nokey (a int, b text);
CREATE TABLE empty_keyed (id int PRIMARY KEY, v numeric);
CREATE TABLE nullable_key (a int UNIQUE, b text);
CREATE TABLE coded (code text NOT NULL UNIQUE, v int);
CREATE VIEW account_view AS SELECT * FROM account;
CREATE SCHEMA ops;
CREATE TABLE ops."Ledger" (id int PRIMARY KEY, amount numeric NOT NULL);
CREATE SEQUENCE counter;
CREATE FUNCTION twice_volatile(numeric) RETURNS numeric LANGUAGE sql VOLATILE AS 'SELECT $1 * 2';
CREATE FUNCTION twice_stable(numeric) RETURNS numeric LANGUAGE sql STABLE AS 'SELECT $1 * 2';
CREATE FUNCTION twice_immutable(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE FUNCTION plus_stable(numeric, numeric) RETURNS numeric LANGUAGE sql STABLE AS 'SELECT $1 + $2';
CREATE OPERATOR ## (LEFTARG = numeric, RIGHTARG = numeric, FUNCTION = plus_stable);
"""

ACCOUNT_ROWS = [(1, "100", "ann"), (2, "250.5", "bob"), (3, "0", None)]


def setUpModule():
    global pg, workdir
    pg = PgCluster().start()
    pg.psql("CREATE DATABASE bank")
    pg.create_user("scram_user", "right-password", "scram-sha-256")
    with pg.connect("bank") as conn:
        conn.execute(SETUP)
    workdir = tempfile.TemporaryDirectory(prefix="seedproxy-validation-")


def tearDownModule():
    if workdir is not None:
        workdir.cleanup()
    e2e_common.stop(None, pg)


def seed(expression, type_="numeric", attribute="risk", entity="account", database="bank", **extra):
    s = {"database": database, "entity": entity, "attribute": attribute, "type": type_,
         "expression": expression}
    s.update(extra)
    return s


def check_config(seeds, upstream_port=None, control=None, mode=None, validation=None):
    """Runs `seedproxy --check-config` on a file holding `seeds` (and `control`, its file mode
    `mode`, 0600 by default); returns (exit code, stdout, stderr)."""
    config = {"listen": {"host": "127.0.0.1", "port": 6432},
              "upstream": {"host": "127.0.0.1", "port": upstream_port or pg.port},
              "control": control or {"user": "postgres"},
              "limits": {"connect_timeout_seconds": 2},
              "seeds": seeds}
    if validation is not None:
        config["validation"] = validation
    fd, path = tempfile.mkstemp(suffix=".json", dir=workdir.name)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f)
    if mode is not None:
        os.chmod(path, mode)
    done = subprocess.run([default_binary(), "--check-config", path], capture_output=True, text=True,
                          timeout=60)
    return done.returncode, done.stdout, done.stderr


class ValidationCase(unittest.TestCase):
    def setUp(self):
        try:
            default_binary()
        except ProxyError as e:
            self.skipTest(str(e))

    def tearDown(self):
        # Validation never changes the database: same rows, no leftover check objects or sessions.
        with pg.connect("bank") as conn:
            rows = conn.execute("SELECT id, balance::text, owner FROM account ORDER BY id").fetchall()
            self.assertEqual(rows, ACCOUNT_ROWS)
            self.assertEqual(conn.execute("SELECT count(*) FROM txn").fetchone()[0], 3)
            leftovers = conn.execute(
                "SELECT count(*) FROM pg_class WHERE relname = 'seedproxy_seed_check'").fetchone()[0]
            self.assertEqual(leftovers, 0, "the check view outlived its transaction")
            self.assertEqual(conn.execute("SELECT last_value FROM counter").fetchone()[0], 1,
                             "a sequence advanced")
            self.assertEqual(conn.execute(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 'account'::regclass "
                "AND attnum > 0 AND NOT attisdropped").fetchone()[0], 4)

    def refused(self, s, rule, *fragments, position=None, validation=None):
        code, out, err = check_config([s], validation=validation)
        self.assertEqual(code, 1, f"expected a refusal, got exit {code}: {out}{err}")
        self.assertIn(f"refused ({rule}):", err)
        self.assertIn("bank." + s["entity"] + "." + s["attribute"], err)
        for fragment in fragments:
            self.assertIn(fragment, err)
        if position is not None:
            self.assertIn(f"(at character {position} of the expression)", err)
        self.assertIn("1 of 1 seed(s) refused", err)
        return err

    def accepted(self, *seeds, validation=None):
        code, out, err = check_config(list(seeds), validation=validation)
        self.assertEqual(code, 0, f"expected acceptance: {err}")
        self.assertIn(f"{len(seeds)} of {len(seeds)} seed(s) validated", out)
        self.assertNotIn("refused", err)
        return out + err


class Entity(ValidationCase):
    def test_missing_table(self):
        self.refused(seed("1", entity="acount"), "entity", 'table "public"."acount" does not exist')

    def test_missing_schema(self):
        self.refused(seed("1", entity="audit.account"), "entity", 'schema "audit" does not exist')

    def test_view_is_not_a_table(self):
        self.refused(seed("balance", entity="account_view"), "entity", "is a view")

    def test_table_without_key_refused_unless_never_materialized(self):
        self.refused(seed("a + 1", "int", entity="nokey"), "key", "no primary key",
                     'materialize.policy to "never"')
        self.refused(seed("a + 1", "int", entity="nullable_key"), "key", "NOT NULL")
        self.accepted(seed("a + 1", "int", entity="nokey", materialize={"policy": "never"}))

    def test_unique_not_null_key_and_quoted_names(self):
        self.accepted(seed("v * 2", "int", entity="coded"),
                      seed("amount * 2", entity='ops."Ledger"'))
        self.refused(seed("amount", entity="ops.ledger"), "entity", 'table "ops"."ledger" does not exist')


class Attribute(ValidationCase):
    def test_existing_column(self):
        self.refused(seed("balance * 2", attribute="balance"), "attribute",
                     'already has a column named "balance"')
        # unquoted names fold to lower case, as in SQL
        self.refused(seed("balance * 2", attribute="Owner"), "attribute",
                     'already has a column named "owner"')

    def test_system_column(self):
        self.refused(seed("1", "int", attribute="ctid"), "attribute", "system column")
        self.refused(seed("1", "int", attribute="XMIN"), "attribute", "system column")

    def test_reserved_word(self):
        self.refused(seed("1", "int", attribute="select"), "attribute", "reserved word")

    def test_bad_identifier_is_refused_by_the_parser(self):
        code, _, err = check_config([seed("1", "int", attribute="risk-score")])
        self.assertEqual(code, 1)
        self.assertIn("seeds[0].attribute: expected a plain identifier", err)


class Expression(ValidationCase):
    def test_injection_statement_separator(self):
        self.refused(seed("1); DROP TABLE account; --", "int"), "expression",
                     "closes a parenthesis it did not open", position=2)
        self.refused(seed("1 + 1; DROP TABLE account", "int"), "expression",
                     "statement separator ';'", position=6)

    def test_injection_comment(self):
        self.refused(seed("balance /* "), "expression", "comment ('/*')", position=9)
        self.refused(seed("balance -- )) IS NULL"), "expression", "comment ('--')", position=9)

    def test_injection_second_statement(self):
        self.refused(seed("0 FROM account; DELETE FROM account WHERE (true", "int"), "expression",
                     "statement separator ';'", position=15)

    def test_injection_without_separator_stays_inside_parentheses(self):
        # balanced and free of ';' and comments: it can only be one (bad) expression
        self.refused(seed("1)) IS NULL OR ((true", "int"), "expression", "closes a parenthesis")
        self.refused(seed("balance)::text, (SELECT 1"), "expression", "closes a parenthesis")

    def test_semicolon_inside_a_literal_is_fine(self):
        self.accepted(seed("owner || '; DROP TABLE account; --'", "text"))

    def test_query_instead_of_expression(self):
        self.refused(seed("SELECT balance FROM account"), "expression", "is a query")

    def test_two_expressions(self):
        self.refused(seed("balance, owner"), "expression", "exactly one expression", position=8)

    def test_parameter_placeholder(self):
        self.refused(seed("balance + $1"), "expression", "parameter placeholder", position=11)

    def test_top_level_aggregate(self):
        self.refused(seed("count(*)", "bigint"), "aggregate", "aggregate functions are not allowed",
                     position=1)

    def test_window_function(self):
        self.refused(seed("balance - avg(balance) OVER ()"), "window", "window functions", position=11)

    def test_set_returning_function(self):
        self.refused(seed("generate_series(1, balance::int)", "int"), "set-returning",
                     "set-returning functions", position=1)

    def test_data_modifying_cte_in_subquery(self):
        self.refused(seed("(SELECT n FROM (WITH d AS (DELETE FROM txn RETURNING id) "
                          "SELECT count(*) AS n FROM d) s)", "bigint"),
                     "expression", "data-modifying statement")

    def test_row_locking_subquery(self):
        self.refused(seed("(SELECT t.amount FROM txn t WHERE t.id = account.id FOR UPDATE)"),
                     "expression", "locks rows")

    def test_syntax_error_position(self):
        self.refused(seed("balance + * 2"), "expression", "syntax error", position=11)


class Determinism(ValidationCase):
    def test_random(self):
        self.refused(seed("balance * random()"), "deterministic", "random() is VOLATILE", position=11)

    def test_now(self):
        self.refused(seed("now()", "timestamptz"), "deterministic", "now() is STABLE", position=1)

    def test_current_timestamp(self):
        self.refused(seed("CURRENT_DATE - opened", "int"), "deterministic", "CURRENT_DATE",
                     position=1)
        self.refused(seed("opened < CURRENT_TIMESTAMP", "boolean"), "deterministic", "STABLE")

    def test_current_user(self):
        self.refused(seed("owner = CURRENT_USER", "boolean"), "deterministic", "CURRENT_USER")

    def test_nextval(self):
        self.refused(seed("nextval('counter')", "bigint"), "deterministic",
                     "nextval(regclass) is VOLATILE")

    def test_user_defined_functions(self):
        self.refused(seed("twice_volatile(balance)"), "deterministic",
                     "twice_volatile(numeric) is VOLATILE", position=1)
        self.refused(seed("1 + twice_stable(balance)"), "deterministic",
                     "twice_stable(numeric) is STABLE", position=5)
        self.accepted(seed("twice_immutable(balance)"))

    def test_user_defined_operator(self):
        self.refused(seed("balance ## 1"), "deterministic", "operator ##(numeric,numeric)",
                     "plus_stable(numeric,numeric), which is STABLE")

    def test_cast_through_text(self):
        self.refused(seed("owner::date", "date"), "deterministic", "date_in", "STABLE", position=6)
        self.refused(seed("opened::text", "text"), "deterministic", "date_out", "STABLE")

    def test_stable_cast_to_the_declared_type(self):
        # date -> timestamptz depends on the TimeZone setting
        self.refused(seed("opened", "timestamptz"), "deterministic", "STABLE")

    def test_moving_literal(self):
        self.refused(seed("opened < 'today'", "boolean"), "deterministic", "'today'")

    def test_system_column_read(self):
        self.refused(seed("ctid::text", "text"), "deterministic", "system column")

    def test_volatile_inside_subquery(self):
        self.refused(seed("(SELECT max(amount) * random() FROM txn WHERE txn.account_id = account.id)"),
                     "deterministic", "random() is VOLATILE")


class TypesAndColumns(ValidationCase):
    def test_missing_column_with_position(self):
        self.refused(seed("balance + balanc"), "column", 'column "balanc" does not exist', position=11)

    def test_position_counts_characters(self):
        # 'é' is two bytes but one character, as PostgreSQL counts
        self.refused(seed("'é' || ownr", "text"), "column", 'column "ownr" does not exist', position=8)

    def test_missing_type(self):
        self.refused(seed("balance", "money_amount"), "type", 'type "money_amount" does not exist')

    def test_type_that_smuggles_sql(self):
        self.refused(seed("balance", "int) IS NULL; DROP TABLE account; --"), "type",
                     "closes a parenthesis")
        self.refused(seed("balance", "int; DROP TABLE account"), "type", "';'")
        self.refused(seed("balance", "int)) IS NULL OR ((true"), "type", "closes a parenthesis")

    def test_expression_that_does_not_cast(self):
        self.refused(seed("opened", "int"), "type", "cannot cast type date to integer")


class Accepted(ValidationCase):
    def test_row_local_expressions(self):
        self.accepted(seed("balance * 0.01 + length(coalesce(owner, ''))"),
                      seed("opened + 30", "date", attribute="review_on"),
                      seed("opened + interval '1 day'", "timestamp", attribute="next_day"),
                      seed("CASE WHEN balance > 100 THEN 'high' ELSE 'low' END", "text",
                           attribute="tier"))

    def test_cross_table_scalar_subquery(self):
        self.accepted(seed("(SELECT coalesce(sum(t.amount), 0) FROM txn t WHERE t.account_id = account.id)",
                           attribute="txn_total"),
                      seed("(SELECT count(*) FROM account a2 WHERE a2.balance > account.balance)",
                           "bigint", attribute="richer"))


ENORMOUS = "(SELECT count(*) FROM generate_series(1, 50000000))"
# The planner prices it far above a read of the table, yet it finishes within the sample's timeout.
COSTLY = "(SELECT count(*) FROM generate_series(1, 100000))"


class Cost(ValidationCase):
    def test_enormous_immutable_expression_is_refused_naming_its_cost(self):
        # Issue 14: immutable, deterministic, and it would run 50 million rows on every read. The
        # planner's estimate refuses it before it is ever run.
        self.refused(seed(ENORMOUS, "bigint"), "cost", "its estimated cost is", "per row of account",
                     "times the table's own", "validation.max_cost_ratio 1e+04",
                     "computed on every read")

    def test_enormous_expression_on_an_empty_table_is_refused_too(self):
        self.refused(seed(ENORMOUS, "bigint", entity="empty_keyed"), "cost", "its estimated cost is")

    def test_past_the_cost_ratio_the_statement_timeout_still_refuses(self):
        self.refused(seed(ENORMOUS, "bigint"), "cost", "statement timeout (2 s)", "computed on every read",
                     validation={"max_cost_ratio": 1e12})
        self.refused(seed(ENORMOUS, "bigint"), "cost", "evaluating it for 3 rows of account",
                     "statement timeout (0.3 s)",
                     validation={"max_cost_ratio": 1e12, "statement_timeout_seconds": 0.3,
                                 "sample_rows": 3})

    def test_cost_ratio_is_configurable_and_can_only_warn(self):
        self.accepted(seed(COSTLY, "bigint"))
        self.refused(seed(COSTLY, "bigint"), "cost", "its estimated cost is",
                     "validation.max_cost_ratio 10;", validation={"max_cost_ratio": 10})
        told = self.accepted(seed(COSTLY, "bigint"),
                             validation={"max_cost_ratio": 10, "cost_action": "warn"})
        self.assertIn("warning: seed bank.account.risk: its estimated cost is", told)

    def test_bad_validation_settings_are_refused_naming_the_key(self):
        for bad, key in (({"max_cost_ratio": 0.5}, "validation.max_cost_ratio"),
                         ({"sample_rows": 0}, "validation.sample_rows"),
                         ({"cost_action": "ignore"}, "validation.cost_action"),
                         ({"statement_timeout_seconds": 0}, "validation.statement_timeout_seconds")):
            code, out, err = check_config([seed("balance * 2")], validation=bad)
            self.assertEqual(code, 1, f"{bad}: {out}{err}")
            self.assertIn(key, err)

    def test_data_errors_are_not_the_seeds_fault(self):
        # Division by zero for the row whose balance is 0: a generated column would fail the same
        # way on that row; validation judges the cost only.
        self.accepted(seed("100 / balance"))


class WholeFile(ValidationCase):
    def test_every_refusal_is_printed(self):
        code, out, err = check_config([seed("random()", attribute="a1"),
                                       seed("balance", attribute="a2"),
                                       seed("nope", attribute="a3"),
                                       seed("1", entity="missing", attribute="a4")])
        self.assertEqual(code, 1)
        lines = [line for line in err.splitlines() if "refused (" in line]
        self.assertEqual(len(lines), 3, err)
        self.assertIn("bank.account.a1 refused (deterministic)", err)
        self.assertIn("bank.account.a3 refused (column)", err)
        self.assertIn("bank.missing.a4 refused (entity)", err)
        self.assertIn("3 of 4 seed(s) refused", err)

    def test_unreachable_database_is_a_note(self):
        code, out, err = check_config([seed("balance"), seed("x + 1", database="nosuchdb")])
        self.assertEqual(code, 0, err)
        self.assertIn('database "nosuchdb" not reachable (', err)
        self.assertIn("seeds checked for syntax only", err)
        self.assertIn("1 of 2 seed(s) validated", out)

    def test_unreachable_server_is_a_note(self):
        code, out, err = check_config([seed("random()")], upstream_port=free_port())
        self.assertEqual(code, 0, err)
        self.assertIn('database "bank" not reachable (', err)
        self.assertIn("0 of 1 seed(s) validated", out)

    def test_wrong_control_password_fails_the_check(self):
        # Issue 14: this used to print "is valid" and exit 0; the proxy could never have run.
        wrong = {"user": "scram_user", "password": "wrong-password"}
        for seeds in ([seed("balance")], []):
            with self.subTest(seeds=len(seeds)):
                code, out, err = check_config(seeds, control=wrong)
                self.assertEqual(code, 1, out + err)
                self.assertIn('password authentication failed for user "scram_user"', err)
                self.assertIn("control.password", err)
                self.assertNotIn("is valid", out)

    def test_password_in_a_file_others_can_read_is_a_warning(self):
        with_password = {"user": "postgres", "password": "not-needed-under-trust"}
        code, out, err = check_config([seed("balance")], control=with_password, mode=0o644)
        self.assertEqual(code, 0, err)
        self.assertRegex(err, r"warning: configuration file \S+\.json holds a password and is "
                              r"readable by any user of this host \(mode 0644\)")
        code, out, err = check_config([seed("balance")], control=with_password, mode=0o640)
        self.assertIn("readable by its group (mode 0640)", err)
        for quiet in ((with_password, 0o600), ({"user": "postgres"}, 0o644)):
            code, out, err = check_config([seed("balance")], control=quiet[0], mode=quiet[1])
            self.assertEqual(code, 0, err)
            self.assertNotIn("warning", err)


if __name__ == "__main__":
    e2e_common.main()
