-- The central invariant's query corpus (tests/e2e/test_invariant.py).
--
-- Every case runs through seedproxy against bank_virtual (account has NO risk_score / txn_count /
-- cust_segment columns; the proxy's seeds provide them) and directly against bank_reference
-- (risk_score is a real GENERATED ALWAYS AS (...) STORED column, txn_count a real column kept exact
-- by a trigger, cust_segment, the customer's segment, a generated column kept exact by a trigger).
-- Rows, column names, column types and typmods, command tags and errors (SQLSTATE, message,
-- detail, hint, position) must be identical.
--
-- Format:
--   -- @case NAME [flags]     starts a case; NAME is unique and is how KNOWN_GAPS names a case
--   -- @then                  starts the next step of the same case (same session, run in order;
--                             a failing step does not stop the later ones)
--   -- @params JSON           parameters of the current step (psycopg %s placeholders)
--   -- # ...                  a comment line that belongs to no case
-- Flags:
--   tx         run the case between BEGIN and ROLLBACK (DML that must not change the data)
--   multi      several statements in one simple Query: simple-protocol modes only
--   once       run in the first mode only (DDL, committed DML)
--   unordered  compare rows as a multiset even though the text has ORDER BY (and vice versa:
--   ordered    compare in order although no top-level ORDER BY was detected)
--   norows     compare column names/types and command tag, not the rows (EXPLAIN)
-- Rows are compared in order when the statement has ORDER BY outside parentheses. Every ORDER BY
-- ends with a unique key so the order is the same on both databases whatever their heap order.
-- Data: 120 customers (customer.risk_score is a physical int column, NULL for every 7th),
-- 300 accounts (balance NULL for every 17th, credit_limit NULL for every 23rd, accounts 291..300
-- have no transactions), 3000 transactions, risk_label(risk_score, label), band(lo, hi, name),
-- other.account(id, risk_score text, note), archive.account(id, balance, credit_limit).

-- # ---------------------------------------------------------------- plain reads
-- @case read_unqualified
SELECT risk_score FROM account ORDER BY id
-- @case read_where
SELECT id, risk_score FROM account WHERE risk_score > 5 ORDER BY id
-- @case read_alias
SELECT a.risk_score AS r, a.id FROM account a ORDER BY a.id
-- @case read_table_qualified
SELECT account.risk_score FROM account ORDER BY account.id
-- @case read_schema_qualified
SELECT public.account.risk_score, id FROM public.account ORDER BY id
-- @case read_quoted
SELECT "risk_score", "account"."txn_count" FROM "account" ORDER BY "id"
-- @case read_upper_case
SELECT RISK_SCORE, Txn_Count FROM ACCOUNT ORDER BY ID
-- @case read_quoted_upper_is_unknown
SELECT "RISK_SCORE" FROM account
-- @case read_misspelled
SELECT risk_scor FROM account
-- @case read_by_pk
SELECT id, risk_score, txn_count FROM account WHERE id = 42
-- @case read_nulls
SELECT id, balance, credit_limit, risk_score FROM account WHERE risk_score IS NULL ORDER BY id
-- @case read_between
SELECT id FROM account WHERE risk_score BETWEEN 2 AND 4 ORDER BY id
-- @case read_in_list
SELECT id, risk_score FROM account WHERE risk_score IN (5.00, 10.00, 12.35) OR risk_score::int IN (3, 7) ORDER BY id
-- @case read_only
SELECT risk_score FROM ONLY public.account WHERE id < 20 ORDER BY id
-- @case read_tablesample
SELECT count(risk_score), sum(txn_count) FROM account TABLESAMPLE BERNOULLI (100)
-- @case read_system_column
SELECT xmin IS NOT NULL AS has_xmin, risk_score FROM account WHERE id = 1
-- @case read_txn_count
SELECT id, txn_count FROM account ORDER BY id
-- @case read_txn_count_zero
SELECT id, txn_count FROM account WHERE txn_count = 0 ORDER BY id
-- @case read_txn_count_vs_subquery
SELECT a.id, a.txn_count = (SELECT count(*) FROM txn x WHERE x.account_id = a.id) AS exact FROM account a ORDER BY a.id
-- @case read_alias_t_captures_expression_alias
SELECT t.id, t.txn_count, t.risk_score FROM account t ORDER BY t.id
-- @case read_alias_txn
SELECT txn.id, txn.txn_count FROM account txn WHERE txn.id < 30 ORDER BY txn.id
-- @case read_alias_account_on_other_table
SELECT account.id, account.risk_score FROM customer account ORDER BY account.id

-- # ---------------------------------------------------------------- expressions and output names
-- @case expr_arith
SELECT id, risk_score * 2 AS doubled, risk_score + 1, -risk_score, abs(risk_score) FROM account ORDER BY id
-- @case expr_coalesce
SELECT id, coalesce(risk_score, 0), nullif(risk_score, 0) FROM account ORDER BY id
-- @case expr_is_null
SELECT id, risk_score IS NULL, risk_score IS DISTINCT FROM 1 FROM account ORDER BY id
-- @case expr_case
SELECT id, CASE WHEN risk_score > 10 THEN 'high' WHEN risk_score > 5 THEN 'mid' ELSE 'low' END AS band FROM account ORDER BY id
-- @case expr_casts_keep_names
SELECT id, risk_score::text, risk_score::int, CAST(risk_score AS float8), txn_count::text FROM account ORDER BY id
-- @case expr_parenthesised_keeps_name
SELECT id, (risk_score), (((txn_count))) FROM account ORDER BY id
-- @case expr_parenthesised_with_alias
SELECT id, (risk_score) AS r, (a.txn_count) n FROM account a ORDER BY id
-- @case expr_cast_in_subquery_name
SELECT s.risk_score FROM (SELECT id, risk_score::text FROM account) s ORDER BY s.id
-- @case expr_round
SELECT id, round(risk_score, 1), trunc(risk_score), ceil(risk_score) FROM account ORDER BY id
-- @case expr_greatest
SELECT id, greatest(risk_score, 0), least(risk_score, txn_count) FROM account ORDER BY id
-- @case expr_alias_without_as
SELECT risk_score risk, txn_count n FROM account ORDER BY id
-- @case expr_quoted_alias
SELECT risk_score AS "Risk Score", txn_count AS "TXN" FROM account ORDER BY id
-- @case expr_alias_named_like_other_column
SELECT id, risk_score AS balance FROM account ORDER BY id
-- @case expr_concat
SELECT id, risk_score || ' pts' AS label FROM account ORDER BY id
-- @case expr_pg_typeof
SELECT pg_typeof(risk_score), pg_typeof(txn_count) FROM account WHERE id = 1
-- @case expr_format
SELECT format('%s/%s', risk_score, txn_count), to_char(risk_score, 'S999.99') FROM account ORDER BY id
-- @case expr_json
SELECT json_build_object('id', id, 'risk', risk_score, 'n', txn_count) FROM account ORDER BY id
-- @case expr_jsonb_agg
SELECT jsonb_agg(risk_score ORDER BY id) FROM account WHERE id <= 30
-- @case expr_row_compare
SELECT id FROM account WHERE (risk_score, txn_count) > (5, 3) ORDER BY id
-- @case expr_array
SELECT id, ARRAY[risk_score, balance] FROM account WHERE id < 25 ORDER BY id
-- @case expr_bad_literal
SELECT id FROM account WHERE risk_score = 'abc'
-- @case expr_no_operator
SELECT risk_score + 'a'::text FROM account
-- @case expr_division_by_zero
SELECT risk_score / 0 FROM account WHERE id = 1
-- @case expr_collate_on_numeric
SELECT risk_score COLLATE "C" FROM account
-- @case expr_table_name_hidden_by_alias
SELECT account.risk_score FROM account a
-- @case expr_unknown_table
SELECT risk_score FROM no_such_table

-- # ---------------------------------------------------------------- star
-- @case star
SELECT * FROM account ORDER BY id
-- @case star_alias
SELECT a.* FROM account a ORDER BY a.id
-- @case star_table_name
SELECT account.* FROM account ORDER BY id
-- @case star_plus_attribute
SELECT *, risk_score FROM account WHERE id < 50 ORDER BY id
-- @case star_join_both
SELECT * FROM account a JOIN customer c ON c.id = a.customer_id ORDER BY a.id
-- @case star_join_qualified
SELECT c.*, a.* FROM account a JOIN customer c ON c.id = a.customer_id WHERE a.id < 60 ORDER BY a.id
-- @case star_self_join
SELECT a.*, b.* FROM account a JOIN account b ON b.id = a.id + 1 WHERE a.id < 4 ORDER BY a.id
-- @case star_nested
SELECT * FROM (SELECT * FROM account) s ORDER BY id
-- @case star_nested_alias
SELECT s.* FROM (SELECT a.* FROM account a WHERE a.id < 10) s ORDER BY s.id
-- @case star_left_join_txn
SELECT * FROM account a LEFT JOIN txn t ON t.account_id = a.id WHERE a.id > 285 ORDER BY a.id, t.id
-- @case star_union
SELECT * FROM account WHERE id < 3 UNION ALL SELECT * FROM account WHERE id > 298
-- @case star_table_statement
TABLE account
-- @case star_count
SELECT count(a.*) FROM account a
-- @case star_column_alias_list
SELECT x.risk_score, x.i FROM account AS x(i, c, o, b) ORDER BY x.i
-- @case star_column_alias_list_all
SELECT * FROM account AS x(i, c, o, b, l, d, s, r, n) ORDER BY i
-- @case star_column_alias_list_too_many
SELECT * FROM account AS x(i, c, o, b, l, d, s, r, n, g, z) ORDER BY i
-- @case column_alias_list_too_many_unseeded
SELECT * FROM band AS b(l, h, n, extra)
-- @case whole_row
SELECT a FROM account a ORDER BY a.id
-- @case whole_row_json
SELECT row_to_json(a) FROM account a WHERE a.id < 5 ORDER BY a.id
-- @case whole_row_field
SELECT (a).risk_score FROM account a ORDER BY a.id
-- @case whole_row_to_jsonb
SELECT to_jsonb(a) - 'owner' AS j FROM account a WHERE a.id < 5 ORDER BY a.id
-- @case whole_row_json_agg
SELECT json_agg(a ORDER BY a.id) FROM account a WHERE a.id < 4
-- @case whole_row_star_in_function
SELECT row_to_json(a.*) FROM account a WHERE a.id < 3 ORDER BY a.id
-- @case whole_row_alias_named_like_attribute
SELECT risk_score.id FROM (VALUES (1, 'a')) AS risk_score(id, label)
-- @case column_preferred_over_whole_row
SELECT risk_score FROM account, (VALUES (1)) AS risk_score(x) ORDER BY id

-- # ---------------------------------------------------------------- joins
-- @case join_inner
SELECT a.id, a.risk_score, c.name FROM account a JOIN customer c ON c.id = a.customer_id ORDER BY a.id
-- @case join_left_filter_on_attribute
SELECT c.id, a.id, a.risk_score FROM customer c LEFT JOIN account a ON a.customer_id = c.id AND a.risk_score > 8 ORDER BY c.id, a.id
-- @case join_right
SELECT a.id, c.id FROM customer c RIGHT JOIN account a ON a.customer_id = c.id AND c.risk_score > a.risk_score ORDER BY a.id, c.id
-- @case join_full
SELECT a.id, b.name FROM account a FULL JOIN band b ON a.risk_score >= b.lo AND a.risk_score < b.hi AND a.id < 5 ORDER BY a.id NULLS FIRST, b.name
-- @case join_txn
SELECT a.id, t.amount, a.risk_score FROM account a JOIN txn t ON t.account_id = a.id WHERE t.id < 50 ORDER BY t.id
-- @case join_self_on_attribute
SELECT a.id, b.id FROM account a JOIN account b ON a.risk_score = b.risk_score AND a.id < b.id ORDER BY 1, 2
-- @case join_unqualified_unique
SELECT risk_score, amount FROM account a JOIN txn t ON t.account_id = a.id WHERE t.id <= 10 ORDER BY t.id
-- @case join_both_qualified
SELECT a.risk_score, c.risk_score FROM account a JOIN customer c ON c.id = a.customer_id ORDER BY a.id
-- @case join_band
SELECT a.id, b.name FROM account a JOIN band b ON a.risk_score >= b.lo AND a.risk_score < b.hi ORDER BY a.id
-- @case join_comma
SELECT a.id, b.name FROM account a, band b WHERE a.risk_score >= b.lo AND a.risk_score < b.hi ORDER BY a.id
-- @case join_null_extended_virtual
SELECT c.id, a.id, a.risk_score, a.txn_count FROM customer c LEFT JOIN account a ON a.customer_id = c.id AND a.balance > 100000 ORDER BY c.id
-- @case join_null_extended_star
SELECT * FROM customer c LEFT JOIN account a ON a.customer_id = c.id AND a.balance > 100000 WHERE c.id < 10 ORDER BY c.id
-- @case join_using_attribute
SELECT * FROM account JOIN risk_label USING (risk_score) ORDER BY id
-- @case join_using_attribute_unqualified
SELECT id, risk_score, label FROM account JOIN risk_label USING (risk_score) ORDER BY id
-- @case join_natural_on_attribute
SELECT id, label FROM account NATURAL JOIN risk_label ORDER BY id
-- @case join_using_id
SELECT risk_score, kind FROM account JOIN txn USING (id) WHERE id < 20 ORDER BY id
-- @case join_subquery_alias
SELECT s.risk_score FROM (SELECT id, risk_score FROM account) s ORDER BY s.id
-- @case join_subquery_column_aliases
SELECT s.r FROM (SELECT id, risk_score FROM account) AS s(i, r) ORDER BY s.i
-- @case join_subquery_shadows
SELECT risk_score FROM (SELECT id, balance AS risk_score FROM account) s ORDER BY id
-- @case join_values
SELECT v.x, a.risk_score FROM (VALUES (1), (2), (3)) v(x) JOIN account a ON a.id = v.x ORDER BY v.x

-- # ---------------------------------------------------------------- ambiguity
-- @case ambiguous_join
SELECT risk_score FROM account a JOIN customer c ON c.id = a.customer_id
-- @case ambiguous_comma
SELECT risk_score FROM account, customer WHERE false
-- @case ambiguous_self
SELECT risk_score FROM account a, account b
-- @case ambiguous_in_where
SELECT a.id FROM account a JOIN customer c ON c.id = a.customer_id WHERE risk_score > 1
-- @case ambiguous_in_order_by
SELECT a.id FROM account a JOIN customer c ON c.id = a.customer_id ORDER BY risk_score
-- @case ambiguous_txn_count_self
SELECT txn_count FROM account a CROSS JOIN account b

-- # ---------------------------------------------------------------- aggregates, GROUP BY, HAVING
-- @case agg_all
SELECT count(risk_score), sum(risk_score), avg(risk_score), min(risk_score), max(risk_score), sum(txn_count) FROM account
-- @case agg_by_status
SELECT status, avg(risk_score), max(risk_score), min(txn_count) FROM account GROUP BY status ORDER BY status
-- @case agg_having
SELECT status, count(*) FROM account GROUP BY status HAVING avg(risk_score) > 5 ORDER BY status
-- @case agg_group_by_expression
SELECT round(risk_score) AS bucket, count(*) FROM account GROUP BY round(risk_score) ORDER BY bucket NULLS LAST
-- @case agg_group_by_attribute
SELECT risk_score, count(*) FROM account GROUP BY risk_score HAVING count(*) > 1 ORDER BY risk_score
-- @case agg_group_by_ordinal
SELECT risk_score, count(*) FROM account GROUP BY 1 HAVING risk_score > 10 ORDER BY 1
-- @case agg_group_by_attribute_expr_in_select
SELECT risk_score + 1, count(*) FROM account GROUP BY risk_score ORDER BY 1 NULLS FIRST
-- @case agg_filter
SELECT customer_id, sum(risk_score) FILTER (WHERE risk_score > 3) FROM account GROUP BY customer_id ORDER BY customer_id
-- @case agg_string_agg_ordered
SELECT string_agg(id::text, ',' ORDER BY risk_score NULLS FIRST, id) FROM account WHERE id < 40
-- @case agg_array_agg
SELECT array_agg(risk_score ORDER BY id), array_agg(txn_count ORDER BY id) FROM account WHERE id <= 20
-- @case agg_percentile
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY risk_score), percentile_disc(0.9) WITHIN GROUP (ORDER BY risk_score) FROM account
-- @case agg_mode
SELECT mode() WITHIN GROUP (ORDER BY txn_count) FROM account
-- @case agg_group_by_pk_functional_dependency
SELECT id, status, risk_score, txn_count FROM account GROUP BY id ORDER BY id
-- @case agg_attribute_not_grouped
SELECT risk_score FROM account GROUP BY balance, credit_limit
-- @case agg_grouped_attribute_other_column_not
SELECT balance FROM account GROUP BY risk_score
-- @case agg_rollup
SELECT status, round(risk_score) r, count(*) FROM account GROUP BY ROLLUP (status, round(risk_score))
-- @case agg_grouping_sets
SELECT status, txn_count > 10 AS busy, sum(risk_score) FROM account GROUP BY GROUPING SETS ((status), (txn_count > 10), ())
-- @case agg_count_distinct
SELECT count(DISTINCT risk_score), count(DISTINCT txn_count) FROM account
-- @case agg_bool
SELECT bool_and(risk_score > -5), bool_or(txn_count > 20) FROM account
-- @case agg_group_by_txn_count
SELECT txn_count, count(*) FROM account GROUP BY txn_count ORDER BY txn_count
-- @case agg_having_txn_count
SELECT customer_id, sum(txn_count) FROM account GROUP BY customer_id HAVING sum(txn_count) > 30 ORDER BY customer_id
-- @case agg_having_max
SELECT customer_id FROM account GROUP BY customer_id HAVING max(risk_score) > 12 ORDER BY 1

-- # ---------------------------------------------------------------- window functions
-- @case win_rank
SELECT id, rank() OVER (ORDER BY risk_score DESC NULLS LAST) FROM account ORDER BY id
-- @case win_row_number
SELECT id, row_number() OVER (ORDER BY risk_score, id) FROM account ORDER BY id
-- @case win_partition
SELECT id, sum(risk_score) OVER (PARTITION BY status ORDER BY id) FROM account ORDER BY id
-- @case win_named
SELECT id, avg(risk_score) OVER w, max(txn_count) OVER w FROM account WINDOW w AS (PARTITION BY customer_id) ORDER BY id
-- @case win_lag_lead
SELECT id, lag(risk_score) OVER (ORDER BY id), lead(risk_score, 2) OVER (ORDER BY id) FROM account ORDER BY id
-- @case win_empty_over
SELECT id, risk_score - avg(risk_score) OVER () FROM account ORDER BY id
-- @case win_ntile
SELECT id, ntile(4) OVER (ORDER BY risk_score NULLS FIRST, id) FROM account ORDER BY id
-- @case win_first_value
SELECT id, first_value(id) OVER (PARTITION BY status ORDER BY risk_score DESC NULLS LAST, id) FROM account ORDER BY id
-- @case win_top_per_customer
SELECT * FROM (SELECT id, risk_score, dense_rank() OVER (PARTITION BY customer_id ORDER BY risk_score DESC NULLS LAST) dr FROM account) s WHERE dr = 1 ORDER BY id
-- @case win_percent_rank_txn_count
SELECT id, percent_rank() OVER (ORDER BY txn_count) FROM account ORDER BY id
-- @case win_rows_frame
SELECT id, sum(risk_score) OVER (ORDER BY id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) FROM account ORDER BY id
-- @case win_range_offset_on_attribute
SELECT id, count(*) OVER (ORDER BY risk_score RANGE BETWEEN 1 PRECEDING AND 1 FOLLOWING) FROM account ORDER BY id
-- @case win_partition_by_attribute
SELECT id, count(*) OVER (PARTITION BY risk_score) FROM account ORDER BY id

-- # ---------------------------------------------------------------- DISTINCT, ORDER BY, LIMIT
-- @case distinct
SELECT DISTINCT risk_score FROM account ORDER BY risk_score NULLS FIRST
-- @case distinct_on_customer
SELECT DISTINCT ON (customer_id) customer_id, id, risk_score FROM account ORDER BY customer_id, risk_score DESC NULLS LAST, id
-- @case distinct_on_attribute
SELECT DISTINCT ON (risk_score) risk_score, id FROM account ORDER BY risk_score, id
-- @case distinct_pairs
SELECT DISTINCT status, txn_count > 10 FROM account
-- @case distinct_count
SELECT count(*) FROM (SELECT DISTINCT risk_score FROM account) s
-- @case order_desc_limit
SELECT id FROM account ORDER BY risk_score DESC NULLS LAST, id LIMIT 15
-- @case order_ordinals
SELECT id, risk_score FROM account ORDER BY 2, 1
-- @case order_expression
SELECT id FROM account ORDER BY risk_score * txn_count, id
-- @case order_by_output_alias
SELECT id, risk_score AS r FROM account ORDER BY r NULLS FIRST, id
-- @case order_by_alias_shadowing_attribute
SELECT id, balance AS risk_score FROM account ORDER BY risk_score NULLS LAST, id
-- @case group_by_input_column_over_alias
SELECT id, balance AS risk_score FROM account GROUP BY id, risk_score ORDER BY id
-- @case order_using_operator
SELECT a.id FROM account a ORDER BY a.risk_score USING >, a.id
-- @case limit_subquery
SELECT id FROM account ORDER BY id LIMIT (SELECT count(*) FROM account WHERE risk_score > 12)
-- @case offset_subquery
SELECT id FROM account ORDER BY id OFFSET (SELECT max(txn_count) FROM account)
-- @case fetch_with_ties unordered
SELECT id, risk_score FROM account ORDER BY risk_score DESC NULLS LAST FETCH FIRST 5 ROWS WITH TIES

-- # ---------------------------------------------------------------- subqueries
-- @case sub_scalar_correlated
SELECT id, (SELECT max(risk_score) FROM account a2 WHERE a2.customer_id = a.customer_id) FROM account a ORDER BY id
-- @case sub_scalar_avg
SELECT id FROM account WHERE risk_score > (SELECT avg(risk_score) FROM account) ORDER BY id
-- @case sub_in
SELECT id FROM account WHERE id IN (SELECT account_id FROM txn WHERE amount > 90) AND risk_score > 3 ORDER BY id
-- @case sub_exists
SELECT c.id FROM customer c WHERE EXISTS (SELECT 1 FROM account a WHERE a.customer_id = c.id AND a.risk_score > 10) ORDER BY c.id
-- @case sub_all
SELECT c.id FROM customer c WHERE c.risk_score < ALL (SELECT a.risk_score FROM account a WHERE a.customer_id = c.id AND a.risk_score IS NOT NULL) ORDER BY c.id
-- @case sub_correlated_outer_attribute
SELECT a.id FROM account a WHERE EXISTS (SELECT 1 FROM txn t WHERE t.account_id = a.id AND t.amount > a.risk_score * 10) ORDER BY a.id
-- @case sub_correlated_unqualified_outer
SELECT id FROM account WHERE EXISTS (SELECT 1 FROM txn WHERE account_id = account.id AND amount < risk_score) ORDER BY id
-- @case sub_inner_scope_wins_virtual
SELECT c.id FROM customer c WHERE EXISTS (SELECT 1 FROM account WHERE customer_id = c.id AND risk_score > 9) ORDER BY c.id
-- @case sub_inner_scope_wins_physical
SELECT id FROM account a WHERE EXISTS (SELECT 1 FROM customer c WHERE c.id = a.customer_id AND risk_score > 5) ORDER BY id
-- @case sub_lateral
SELECT a.id, l.total FROM account a CROSS JOIN LATERAL (SELECT sum(t.amount) + a.risk_score AS total FROM txn t WHERE t.account_id = a.id) l ORDER BY a.id
-- @case sub_lateral_comma
SELECT a.id, l.x FROM account a, LATERAL (SELECT a.risk_score * 2 AS x) l ORDER BY a.id
-- @case sub_lateral_unqualified
SELECT * FROM account a, LATERAL (SELECT risk_score, txn_count) l WHERE a.id < 20 ORDER BY a.id
-- @case sub_left_lateral_limit
SELECT a.id, l.id FROM account a LEFT JOIN LATERAL (SELECT t.id FROM txn t WHERE t.account_id = a.id AND t.amount > a.risk_score ORDER BY t.id LIMIT 1) l ON true ORDER BY a.id
-- @case sub_scalar_order_by_attribute
SELECT c.id, (SELECT a.id FROM account a WHERE a.customer_id = c.id ORDER BY a.risk_score DESC NULLS LAST, a.id LIMIT 1) FROM customer c ORDER BY c.id
-- @case sub_array
SELECT c.id, ARRAY(SELECT risk_score FROM account WHERE customer_id = c.id ORDER BY id) FROM customer c ORDER BY c.id
-- @case sub_any_physical_inner
SELECT id FROM account WHERE risk_score = ANY (SELECT risk_score FROM risk_label) ORDER BY id
-- @case sub_not_in_nulls
SELECT count(*) FROM account WHERE risk_score NOT IN (SELECT risk_score FROM risk_label)
-- @case sub_in_virtual_list
SELECT label FROM risk_label WHERE risk_score IN (SELECT risk_score FROM account WHERE txn_count > 12) ORDER BY label

-- # ---------------------------------------------------------------- CTEs
-- @case cte_simple
WITH r AS (SELECT id, risk_score FROM account) SELECT * FROM r ORDER BY id
-- @case cte_column_shadows
WITH r AS (SELECT id, balance AS risk_score FROM account) SELECT risk_score FROM r ORDER BY id
-- @case cte_named_account_shadows_table
WITH account AS (SELECT id, 1 AS risk_score FROM public.account) SELECT risk_score FROM account ORDER BY id
-- @case cte_named_account_without_attribute
WITH account AS (SELECT id FROM public.account) SELECT risk_score FROM account
-- @case cte_star_inside
WITH account AS (SELECT * FROM public.account) SELECT id, risk_score, txn_count FROM account ORDER BY id
-- @case cte_materialized
WITH x AS MATERIALIZED (SELECT * FROM account WHERE risk_score > 7) SELECT x.id, x.risk_score, x.txn_count FROM x ORDER BY x.id
-- @case cte_recursive
WITH RECURSIVE chain(id, score, depth) AS (SELECT id, risk_score, 1 FROM account WHERE id = 1 UNION ALL SELECT a.id, a.risk_score, c.depth + 1 FROM chain c JOIN account a ON a.id = c.id + 7 WHERE c.depth < 20) SELECT * FROM chain ORDER BY depth
-- @case cte_recursive_attribute_stops
WITH RECURSIVE walk AS (SELECT id, risk_score FROM account WHERE id = 2 UNION ALL SELECT a.id, a.risk_score FROM walk w JOIN account a ON a.id = w.id + 3 WHERE a.risk_score IS NOT NULL AND w.risk_score < 18) SELECT * FROM walk ORDER BY id
-- @case cte_chained
WITH a AS (SELECT id, risk_score FROM account), b AS (SELECT id FROM a WHERE risk_score > 6) SELECT count(*) FROM b
-- @case cte_modifying tx
WITH u AS (UPDATE account SET balance = balance + 100 WHERE id <= 5 RETURNING id, risk_score, txn_count) SELECT * FROM u ORDER BY id
-- @case cte_delete_txn_then_read tx
WITH d AS (DELETE FROM txn WHERE account_id = 7 RETURNING account_id) SELECT a.id, a.txn_count FROM account a WHERE a.id IN (SELECT account_id FROM d)

-- # ---------------------------------------------------------------- set operations and VALUES
-- @case set_union
SELECT risk_score FROM account WHERE id < 10 UNION SELECT risk_score FROM risk_label
-- @case set_union_all_mixed_types
SELECT risk_score FROM account UNION ALL SELECT risk_score FROM customer
-- @case set_intersect
SELECT risk_score FROM account INTERSECT SELECT risk_score FROM risk_label ORDER BY 1
-- @case set_except
SELECT id FROM account EXCEPT SELECT id FROM account WHERE risk_score > 3 ORDER BY id
-- @case set_parenthesised_limits
(SELECT id, risk_score FROM account ORDER BY risk_score DESC NULLS LAST, id LIMIT 3) UNION ALL (SELECT id, risk_score FROM account ORDER BY risk_score NULLS FIRST, id LIMIT 3)
-- @case values_scalar_subqueries
VALUES ((SELECT risk_score FROM account WHERE id = 1)), ((SELECT max(risk_score) FROM account))
-- @case values_in_from
SELECT * FROM (VALUES (1, 2.5), (2, 7.25)) v(id, risk_score) ORDER BY id

-- # ---------------------------------------------------------------- DML (rolled back)
-- @case dml_update_returning tx
UPDATE account SET balance = balance * 2 WHERE id <= 10 RETURNING id, risk_score
-- @case dml_update_where_attribute tx
UPDATE account SET credit_limit = 0 WHERE risk_score > 15 RETURNING id, risk_score, txn_count
-- @case dml_update_from tx
UPDATE account a SET status = 'flagged' FROM customer c WHERE c.id = a.customer_id AND a.risk_score > c.risk_score RETURNING a.id, a.risk_score
-- @case dml_update_set_from_attribute tx
UPDATE account SET balance = risk_score * 1000 WHERE id = 3 RETURNING *
-- @case dml_update_returning_star tx
UPDATE account SET status = 'x' WHERE id BETWEEN 100 AND 110 RETURNING *
-- @case dml_delete_in tx
DELETE FROM txn WHERE account_id IN (SELECT id FROM account WHERE risk_score < 0) RETURNING id
-- @case dml_delete_using tx
DELETE FROM txn t USING account a WHERE a.id = t.account_id AND a.risk_score > 16 RETURNING t.id, a.risk_score
-- @case dml_delete_returning_star tx
DELETE FROM account WHERE id = 300 RETURNING *
-- @case dml_delete_fk_violation tx
DELETE FROM account WHERE risk_score > 15 AND id = (SELECT min(id) FROM account WHERE risk_score > 15)
-- @case dml_insert_returning_star tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) VALUES (1001, 1, 'new', 5000, 1000, '2024-05-05') RETURNING *
-- @case dml_insert_returning_attributes tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) VALUES (1002, 1, 'new', 5000, 1000, '2024-05-05') RETURNING risk_score, txn_count
-- @case dml_insert_positional tx
INSERT INTO account VALUES (1003, 2, 'positional', 100, 200, '2024-01-01', 'open') RETURNING risk_score
-- @case dml_insert_default_into_attribute tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on, risk_score) VALUES (1004, 1, 'x', 1, 1, '2024-01-01', DEFAULT) RETURNING risk_score
-- @case dml_insert_select tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) SELECT id + 2000, customer_id, owner, balance, credit_limit, opened_on FROM account WHERE risk_score > 15 RETURNING id, risk_score
-- @case dml_insert_select_star tx
INSERT INTO account SELECT * FROM account WHERE id = 1
-- @case dml_insert_txn_then_count tx multi
INSERT INTO txn (id, account_id, amount, at, kind) VALUES (9001, 5, 1, '2024-06-01', 'fee'), (9002, 5, 2, '2024-06-02', 'fee'); SELECT id, txn_count FROM account WHERE id = 5
-- @case dml_insert_returning_subquery tx
INSERT INTO txn (id, account_id, amount, at, kind) VALUES (9003, 6, 1, '2024-06-01', 'fee') RETURNING id, (SELECT a.txn_count FROM account a WHERE a.id = 6)
-- @case dml_on_conflict tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) VALUES (5, 1, 'dup', 7000, 10, '2024-01-01') ON CONFLICT (id) DO UPDATE SET balance = EXCLUDED.balance WHERE account.risk_score < 100 RETURNING id, risk_score
-- @case dml_on_conflict_excluded_attribute tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) VALUES (6, 1, 'dup', 7000, 10, '2024-01-01') ON CONFLICT (id) DO UPDATE SET balance = account.balance + 1 WHERE excluded.risk_score > 0 RETURNING id, balance, risk_score
-- @case dml_merge tx
MERGE INTO account a USING (VALUES (5, 100.0), (6, -50.0)) v(id, delta) ON a.id = v.id WHEN MATCHED AND a.risk_score > 0 THEN UPDATE SET balance = a.balance + v.delta
-- @case dml_update_other_table_physical_column tx
UPDATE customer SET risk_score = 3 WHERE id = 1 RETURNING risk_score
-- @case dml_update_set_default tx
UPDATE account SET risk_score = DEFAULT WHERE id = 1 RETURNING risk_score
-- @case dml_select_for_update tx
SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id FOR UPDATE
-- @case dml_select_for_update_of tx
SELECT a.risk_score FROM account a JOIN txn t ON t.account_id = a.id WHERE t.id < 4 ORDER BY t.id FOR UPDATE OF a

-- # ---------------------------------------------------------------- refusals (writes to the attribute)
-- @case refuse_update
UPDATE account SET risk_score = 1 WHERE id = 1
-- @case refuse_update_alias
UPDATE account AS a SET risk_score = a.balance WHERE a.id = 1
-- @case refuse_update_multi_column
UPDATE account SET (balance, risk_score) = (1, 2) WHERE id = 1
-- @case refuse_update_no_rows
UPDATE account SET risk_score = risk_score WHERE false
-- @case refuse_update_from
UPDATE account a SET risk_score = 2 FROM customer c WHERE c.id = a.customer_id
-- @case refuse_insert_values
INSERT INTO account (id, customer_id, owner, opened_on, risk_score) VALUES (2001, 1, 'x', '2024-01-01', 5)
-- @case refuse_insert_select
INSERT INTO account (id, customer_id, owner, opened_on, risk_score) SELECT id + 5000, customer_id, owner, opened_on, 1 FROM account
-- @case refuse_on_conflict_update
INSERT INTO account (id, customer_id, owner, opened_on) VALUES (1, 1, 'x', '2024-01-01') ON CONFLICT (id) DO UPDATE SET risk_score = 1
-- @case refuse_insert_params
INSERT INTO account (id, customer_id, owner, opened_on, risk_score) VALUES (%s, 1, 'p', '2024-01-01', %s)
-- @params [2002, 3]
-- @case refuse_in_cte
WITH u AS (UPDATE account SET risk_score = 0 RETURNING id) SELECT count(*) FROM u

-- # ---------------------------------------------------------------- parameters (extended protocol in psycopg 3)
-- @case param_pk
SELECT risk_score, txn_count FROM account WHERE id = %s
-- @params [7]
-- @case param_any
SELECT id, risk_score, txn_count FROM account WHERE id = ANY(%s) ORDER BY id
-- @params [[1, 2, 3, 17]]
-- @case param_compare_attribute
SELECT id FROM account WHERE risk_score > %s ORDER BY id
-- @params [7]
-- @case param_between
SELECT id FROM account WHERE risk_score BETWEEN %s AND %s ORDER BY id
-- @params [2, 4]
-- @case param_in_select_list
SELECT %s::int + risk_score, txn_count - %s FROM account WHERE id = %s
-- @params [1, 2, 10]
-- @case param_limit
SELECT id, risk_score FROM account ORDER BY risk_score DESC NULLS LAST, id LIMIT %s
-- @params [5]
-- @case param_txn_count
SELECT id FROM account WHERE txn_count > %s ORDER BY id
-- @params [15]
-- @case param_update_returning tx
UPDATE account SET balance = %s WHERE id = %s RETURNING risk_score
-- @params [1234.5, 9]
-- @case param_text
SELECT id, risk_score FROM account WHERE owner = %s
-- @params ["owner 011"]

-- # ---------------------------------------------------------------- EXPLAIN (plans differ; names/types must not)
-- @case explain norows
EXPLAIN (COSTS OFF) SELECT id, risk_score FROM account WHERE risk_score > 3
-- @case explain_analyze_dml tx norows
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) UPDATE account SET balance = balance + 1 WHERE risk_score > 17

-- # ---------------------------------------------------------------- multi-statement simple queries
-- @case multi_reads multi
SELECT risk_score FROM account WHERE id = 1; SELECT txn_count FROM account WHERE id = 2; SELECT 3 AS three
-- @case multi_refusal_in_middle multi
SELECT 1 AS one; UPDATE account SET risk_score = 1; SELECT 2 AS two
-- @then
SELECT risk_score FROM account WHERE id = 1
-- @case multi_refusal_rolls_back_earlier multi
UPDATE account SET balance = 0 WHERE id = 1; UPDATE account SET risk_score = 1
-- @then
SELECT balance, risk_score FROM account WHERE id = 1

-- # ---------------------------------------------------------------- transaction state after a refusal
-- @case tx_refusal_aborts
BEGIN
-- @then
UPDATE account SET risk_score = 1 WHERE id = 1
-- @then
SELECT risk_score FROM account WHERE id = 1
-- @then
ROLLBACK
-- @then
SELECT risk_score FROM account WHERE id = 1
-- @case tx_refusal_savepoint
BEGIN
-- @then
SAVEPOINT s1
-- @then
INSERT INTO account (id, customer_id, owner, opened_on, risk_score) VALUES (2003, 1, 'x', '2024-01-01', 5)
-- @then
SELECT 1
-- @then
ROLLBACK TO SAVEPOINT s1
-- @then
SELECT id, risk_score FROM account WHERE id = 2
-- @then
COMMIT
-- @case tx_refusal_then_commit_is_rollback
BEGIN
-- @then
UPDATE account SET balance = 1 WHERE id = 3
-- @then
UPDATE account SET risk_score = 1 WHERE id = 3
-- @then
COMMIT
-- @then
SELECT balance, risk_score FROM account WHERE id = 3

-- # ---------------------------------------------------------------- explicit PREPARE / EXECUTE, cursors
-- @case prepare_execute
PREPARE byc(int) AS SELECT id, risk_score, txn_count FROM account WHERE customer_id = $1 ORDER BY id
-- @then
EXECUTE byc(5)
-- @then
EXECUTE byc(77)
-- @then
DEALLOCATE byc
-- @case prepare_execute_refused
PREPARE bad(int) AS UPDATE account SET risk_score = $1
-- @then
EXECUTE bad(1)
-- @case prepare_execute_dml
BEGIN
-- @then
PREPARE upd(numeric, int) AS UPDATE account SET balance = $1 WHERE id = $2 RETURNING id, risk_score
-- @then
EXECUTE upd(1000, 10)
-- @then
EXECUTE upd(NULL, 11)
-- @then
ROLLBACK
-- @case declare_fetch
BEGIN
-- @then
DECLARE cur CURSOR FOR SELECT id, risk_score FROM account WHERE risk_score > 8 ORDER BY id
-- @then
FETCH 5 FROM cur
-- @then
FETCH ALL FROM cur
-- @then
CLOSE cur
-- @then
ROLLBACK
-- @case declare_with_hold_star
DECLARE held CURSOR WITH HOLD FOR SELECT * FROM account ORDER BY risk_score DESC NULLS LAST, id
-- @then
FETCH 3 FROM held
-- @then
MOVE 100 IN held
-- @then
FETCH 2 FROM held
-- @then
CLOSE held

-- # ---------------------------------------------------------------- search_path
-- @case search_path_other_schema
SET search_path = other, public
-- @then
SELECT id, risk_score FROM account ORDER BY id
-- @then
SELECT * FROM account ORDER BY id
-- @then
SELECT a.id, a.risk_score FROM public.account a WHERE a.id < 10 ORDER BY a.id
-- @then
SELECT risk_score FROM account JOIN public.account p USING (id)
-- @then
SELECT txn_count FROM account
-- @then
RESET search_path
-- @then
SELECT id, risk_score FROM account WHERE id < 10 ORDER BY id
-- @case search_path_schema_without_attribute
SET search_path TO archive
-- @then
SELECT risk_score FROM account
-- @then
SELECT * FROM account ORDER BY id
-- @then
SET search_path TO DEFAULT
-- @then
SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id
-- @case search_path_local
BEGIN
-- @then
SET LOCAL search_path = other
-- @then
SELECT id, risk_score FROM account ORDER BY id
-- @then
COMMIT
-- @then
SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id
-- @case search_path_same_text_both_paths
SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id
-- @then
SET search_path = other, public
-- @then
SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id
-- @then
RESET search_path
-- @then
SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id
-- @case search_path_set_config
SELECT set_config('search_path', 'other', false)
-- @then
SELECT id, risk_score FROM account WHERE id > 0 ORDER BY id
-- @then
RESET search_path
-- @case search_path_prepared_then_changed
PREPARE sp AS SELECT id, risk_score FROM account WHERE id < 5 ORDER BY id
-- @then
EXECUTE sp
-- @then
SET search_path = other, public
-- @then
EXECUTE sp
-- @then
RESET search_path
-- @then
DEALLOCATE sp

-- # ---------------------------------------------------------------- COPY
-- @case copy_query_out
COPY (SELECT id, risk_score, txn_count FROM account ORDER BY id) TO STDOUT
-- @case copy_query_star_csv_header
COPY (SELECT * FROM account WHERE id < 5 ORDER BY id) TO STDOUT (FORMAT csv, HEADER)
-- @case copy_from_attribute
COPY account (id, risk_score) FROM STDIN
-- @case copy_to_attribute_column_list
COPY account (id, risk_score) TO STDOUT
-- @case copy_into_txn_then_count tx
COPY txn (id, account_id, amount, at, kind) FROM STDIN
-- @then
SELECT id, txn_count FROM account WHERE id = 5

-- # ---------------------------------------------------------------- DDL through the proxy (each database its own)
-- @case view_roundtrip once
CREATE VIEW v_risky AS SELECT id, risk_score, txn_count FROM account WHERE risk_score > 10
-- @then
SELECT * FROM v_risky ORDER BY id
-- @then
SELECT risk_score, count(*) FROM v_risky GROUP BY risk_score ORDER BY risk_score
-- @then
DROP VIEW v_risky
-- @case view_star once
CREATE VIEW v_all AS SELECT * FROM account
-- @then
SELECT * FROM v_all WHERE id < 30 ORDER BY id
-- @then
SELECT v.id, v.risk_score FROM v_all v JOIN account a ON a.id = v.id AND a.risk_score = v.risk_score ORDER BY v.id
-- @then
DROP VIEW v_all
-- @case create_table_as once
CREATE TEMP TABLE tt AS SELECT id, risk_score, txn_count FROM account
-- @then
SELECT * FROM tt ORDER BY id
-- @then
DROP TABLE tt
-- @case create_table_as_star once
CREATE TABLE snapshot_all AS SELECT * FROM account WHERE id <= 50
-- @then
SELECT * FROM snapshot_all ORDER BY id
-- @then
DROP TABLE snapshot_all

-- # ---------------------------------------------------------------- cross-table seeds between writes to the tables they read
-- # txn_count reads txn, cust_segment reads customer: each case writes those tables (and the
-- # seed rows' keys) and reads the seeds back in the same transaction, in every clause.
-- @case xt_insert_txn_then_read tx
INSERT INTO txn (id, account_id, amount, at, kind) VALUES (9200, 12, 1, '2024-06-01', 'fee'), (9201, 12, 2, '2024-06-01', 'fee'), (9202, 13, 3, '2024-06-01', 'debit') RETURNING id
-- @then
SELECT id, txn_count, cust_segment FROM account WHERE id IN (11, 12, 13) ORDER BY id
-- @then
SELECT id, txn_count FROM account WHERE txn_count >= (SELECT txn_count FROM account WHERE id = 12) ORDER BY txn_count DESC, id
-- @case xt_move_and_delete_txn tx
UPDATE txn SET account_id = 20 WHERE account_id = 21 RETURNING id
-- @then
SELECT a.id, a.txn_count, c.name, a.cust_segment FROM account a JOIN customer c ON c.id = a.customer_id WHERE a.id IN (20, 21) ORDER BY a.id
-- @then
DELETE FROM txn WHERE account_id = 20 AND id % 2 = 0 RETURNING id
-- @then
WITH busy AS (SELECT id, txn_count, cust_segment FROM account WHERE txn_count > 0) SELECT b.id, b.txn_count, b.cust_segment FROM busy b WHERE b.id BETWEEN 15 AND 25 ORDER BY b.id
-- @then
SELECT t.id, a.txn_count FROM txn t JOIN account a ON a.id = t.account_id WHERE t.account_id = 20 ORDER BY t.id
-- @case xt_customer_segment_change tx
UPDATE customer SET segment = 'vip' WHERE id IN (SELECT customer_id FROM account WHERE id <= 5) RETURNING id
-- @then
SELECT id, cust_segment FROM account WHERE cust_segment = 'vip' ORDER BY id
-- @then
SELECT cust_segment, count(*), sum(txn_count) FROM account GROUP BY cust_segment ORDER BY cust_segment
-- @then
UPDATE account SET customer_id = 2 WHERE id = 1 RETURNING id, cust_segment, txn_count
-- @then
SELECT * FROM account WHERE id <= 5 ORDER BY id
-- @case xt_returning_star_after_txn_write tx
INSERT INTO txn (id, account_id, amount, at, kind) VALUES (9210, 30, 1, '2024-06-01', 'fee') RETURNING id
-- @then
UPDATE account SET status = 'busy' WHERE id = 30 RETURNING *
-- @then
DELETE FROM txn WHERE id = 9210 RETURNING account_id, (SELECT a.txn_count FROM account a WHERE a.id = 30)
-- @then
SELECT * FROM account a WHERE a.id = 30
-- @case xt_subqueries_after_delete tx
DELETE FROM txn WHERE account_id IN (SELECT id FROM account WHERE id BETWEEN 40 AND 45) RETURNING id
-- @then
SELECT c.id, (SELECT sum(a.txn_count) FROM account a WHERE a.customer_id = c.id) AS n, EXISTS (SELECT 1 FROM account a WHERE a.customer_id = c.id AND a.txn_count = 0) AS idle FROM customer c ORDER BY c.id
-- @then
SELECT id, txn_count FROM account WHERE id BETWEEN 38 AND 47 ORDER BY txn_count, id
-- @then
SELECT id FROM account WHERE id IN (SELECT a.id FROM account a WHERE a.txn_count = 0 AND a.cust_segment = 'sme') ORDER BY id
-- @case xt_new_account_then_its_txns tx
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) VALUES (1500, 7, 'fresh', 10, 10, '2024-01-01') RETURNING txn_count, cust_segment
-- @then
INSERT INTO txn (id, account_id, amount, at, kind) VALUES (9220, 1500, 1, '2024-06-01', 'fee'), (9221, 1500, 2, '2024-06-02', 'fee')
-- @then
SELECT id, txn_count, cust_segment FROM account WHERE id = 1500
-- @then
UPDATE customer SET segment = NULL WHERE id = 7
-- @then
SELECT a.id, a.cust_segment, a.txn_count FROM account a WHERE a.customer_id = 7 ORDER BY a.id
-- @then
WITH moved AS (UPDATE account SET customer_id = 8 WHERE id = 1500 RETURNING id, cust_segment, txn_count) SELECT m.*, c.segment FROM moved m JOIN customer c ON c.id = 8
-- @case xt_lateral_window_reads
SELECT a.id, a.txn_count, a.cust_segment, l.n, rank() OVER (PARTITION BY a.cust_segment ORDER BY a.txn_count DESC, a.id) FROM account a, LATERAL (SELECT count(*) AS n FROM account b WHERE b.cust_segment = a.cust_segment AND b.txn_count > a.txn_count) l WHERE a.id <= 12 ORDER BY a.id
-- @case xt_join_on_seeds
SELECT a.id, b.id FROM account a JOIN account b ON b.cust_segment = a.cust_segment AND b.txn_count = a.txn_count AND b.id > a.id WHERE a.id <= 20 ORDER BY a.id, b.id

-- # ---------------------------------------------------------------- committed DML, identical on both sides
-- @case committed_insert once
INSERT INTO account (id, customer_id, owner, balance, credit_limit, opened_on) VALUES (501, 3, 'late', 4242.42, 1200, '2024-07-01') RETURNING id, risk_score, txn_count
-- @then
INSERT INTO txn (id, account_id, amount, at, kind) SELECT 10000 + g, 501, g, '2024-07-02', 'debit' FROM generate_series(1, 4) g RETURNING account_id
-- @then
SELECT id, risk_score, txn_count FROM account WHERE id = 501
-- @then
UPDATE txn SET account_id = 502 WHERE id = 10001
-- @then
UPDATE account SET balance = NULL WHERE id = 501 RETURNING risk_score, txn_count
-- @then
DELETE FROM txn WHERE account_id = 501 RETURNING id
-- @then
SELECT id, risk_score, txn_count FROM account WHERE id >= 500 ORDER BY id

-- # ---------------------------------------------------------------- relations the proxy's catalog learns late or never
-- @case ddl_new_table_makes_attribute_ambiguous once
CREATE TABLE acct_note (id int PRIMARY KEY, risk_score text)
-- @then
SELECT risk_score FROM account JOIN acct_note USING (id)
-- @then
SELECT n.risk_score AS note, a.risk_score FROM account a JOIN acct_note n USING (id)
-- @then
DROP TABLE acct_note
-- @case ddl_uncommitted_table_makes_attribute_ambiguous
BEGIN
-- @then
CREATE TABLE acct_draft (id int PRIMARY KEY, risk_score text)
-- @then
SELECT risk_score FROM account JOIN acct_draft USING (id)
-- @then
ROLLBACK
-- @case temp_table_makes_attribute_ambiguous
CREATE TEMP TABLE acct_tmp (id int PRIMARY KEY, risk_score text)
-- @then
INSERT INTO acct_tmp VALUES (1, 'tmp one'), (2, 'tmp two')
-- @then
SELECT risk_score FROM account JOIN acct_tmp USING (id)
-- @then
DROP TABLE acct_tmp
-- @case temp_table_shadows_account
CREATE TEMP TABLE account (id int PRIMARY KEY, risk_score text)
-- @then
INSERT INTO account VALUES (1, 'temp one')
-- @then
SELECT id, risk_score FROM account ORDER BY id
-- @then
SELECT id, risk_score FROM public.account WHERE id < 3 ORDER BY id
-- @then
DROP TABLE account

-- # ---------------------------------------------------------------- function bodies
-- @case function_body_atomic once
CREATE FUNCTION top_risk() RETURNS numeric LANGUAGE sql BEGIN ATOMIC SELECT max(risk_score) FROM account; END
-- @then
SELECT top_risk()
-- @then
DROP FUNCTION top_risk()
-- @case function_body_string once
CREATE FUNCTION top_risk_s() RETURNS numeric LANGUAGE sql AS $$ SELECT max(risk_score) FROM account $$
-- @then
SELECT top_risk_s()
-- @then
DROP FUNCTION top_risk_s()

-- # ---------------------------------------------------------------- shape cache
-- # The steps of a case have one shape and other constants: the proxy serves the later ones from
-- # the first one's template (rewriter/splice/rewrite_template.hpp), splicing their constants in.
-- @case shape_integers
SELECT id, risk_score, txn_count FROM account WHERE id = 17
-- @then
SELECT id, risk_score, txn_count FROM account WHERE id = 18
-- @then
SELECT id, risk_score, txn_count FROM account WHERE id = 123
-- @case shape_negative
SELECT id, risk_score FROM account WHERE balance > -5 AND id < 4 ORDER BY id
-- @then
SELECT id, risk_score FROM account WHERE balance > -123456 AND id < 10 ORDER BY id
-- @then
SELECT id, risk_score FROM account WHERE balance > - 7.5 AND id < 10 ORDER BY id
-- @case shape_strings
SELECT id, risk_score, 'it''s' AS s FROM account WHERE owner = 'owner 007'
-- @then
SELECT id, risk_score, 'x' AS s FROM account WHERE owner = 'owner 042'
-- @then
SELECT id, risk_score, $q$dollar 'quoted'$q$ AS s FROM account WHERE owner = $$owner 100$$
-- @then
SELECT id, risk_score, E'esc\'aped\\' AS s FROM account WHERE owner = E'owner\x20101'
-- @then
SELECT id, risk_score, U&'d\0061t' AS s FROM account WHERE owner = U&'owner 102'
-- @then
SELECT id, risk_score, 'ünïcödé' AS s FROM account WHERE owner = 'owner 103'
-- @case shape_typed
SELECT id, risk_score, date '2020-01-01' AS d, '1'::int AS i FROM account WHERE opened_on > date '2020-01-01' AND id < 5 ORDER BY id
-- @then
SELECT id, risk_score, date '1999-12-31' AS d, '12345'::int AS i FROM account WHERE opened_on > date '2021-02-03' AND id < 40 ORDER BY id
-- @then
SELECT id, risk_score, interval '1 day' AS d, 7::int AS i FROM account WHERE id < 3 ORDER BY id
-- @case shape_numbers
SELECT id, risk_score, 1.5 AS f, 1e3 AS e, 2147483648 AS big, B'101' AS b, X'1F' AS h FROM account WHERE id = 3
-- @then
SELECT id, risk_score, 12345.678 AS f, 2.5e-3 AS e, 99999999999 AS big, B'1111' AS b, X'DEAD' AS h FROM account WHERE id = 4
-- @case shape_positional
SELECT id, risk_score FROM account WHERE id < 6 ORDER BY 2, 1
-- @then
SELECT id, risk_score FROM account WHERE id < 6 ORDER BY 1, 2
-- @then
SELECT risk_score, count(*) FROM account WHERE id < 30 GROUP BY 1 ORDER BY 1
-- @then
SELECT risk_score, count(*) FROM account WHERE id < 30 GROUP BY 1 ORDER BY 2, 1
-- @case shape_typmods
SELECT risk_score::varchar(3) AS v, risk_score::numeric(10,1) AS n FROM account WHERE id = 5
-- @then
SELECT risk_score::varchar(30) AS v, risk_score::numeric(10,4) AS n FROM account WHERE id = 5
-- @case shape_parameters
SELECT id, risk_score FROM account WHERE id = %s AND balance > -1000000
-- @params [5]
-- @then
SELECT id, risk_score FROM account WHERE id = %s AND balance > -1
-- @params [6]
-- @case shape_error_position
SELECT risk_score, 'a' || nosuch FROM account WHERE id = 1
-- @then
SELECT risk_score, 'a much longer string' || nosuch FROM account WHERE id = 123456
-- @then
SELECT risk_score, 'ü' || 1 / 0 FROM account WHERE id = 10
-- @then
SELECT risk_score, 'üüüüüüü' || 1 / 0 FROM account WHERE id = 11
