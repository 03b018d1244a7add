"""read_only: True only when a text is provably free of side effects.

A write classified read-only could be routed to a replica (a serious defect);
a read classified not-read-only merely goes to the primary.
"""

from __future__ import annotations

import pytest

from dbsight.sql import analyze
from dbsight.sql._analyze import analyze_fresh

PG_READ_ONLY = [
    # plain reads
    ("SELECT 1", True),
    ("select * from t where id = 1", True),
    ("VALUES (1), (2)", True),
    ("TABLE t", True),
    ("SHOW search_path", True),
    ("SHOW ALL", True),
    ("SELECT * FROM t JOIN u ON t.id = u.t_id WHERE u.x > 3 ORDER BY t.id LIMIT 10", True),
    ("WITH c AS (SELECT * FROM t) SELECT * FROM c", True),
    (
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 9) "
        "SELECT * FROM r",
        True,
    ),
    ("SELECT a FROM t UNION ALL SELECT b FROM u", True),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.id = t.id)", True),
    ("SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.t = t.id LIMIT 1) l", True),
    ("SELECT count(*) FROM t WHERE id = ANY($1)", True),
    ("SELECT * FROM generate_series(1, 3)", True),
    ("SELECT * FROM unnest(ARRAY[1, 2]) WITH ORDINALITY", True),
    ("SELECT lower(name) FROM users ORDER BY upper(name)", True),
    ("SELECT pg_catalog.lower(x) FROM t", True),
    ("SELECT '1'::int, x::text, CAST(y AS numeric(10, 2)) FROM t", True),
    ("SELECT now(), current_timestamp, current_date, localtimestamp", True),
    ("SELECT random(), clock_timestamp(), gen_random_uuid(), timeofday()", True),
    ("SELECT count(*), sum(a), avg(b), string_agg(c, ','), array_agg(d) FROM t GROUP BY e", True),
    (
        "SELECT row_number() OVER (PARTITION BY a ORDER BY b), lag(a) OVER w "
        "FROM t WINDOW w AS (ORDER BY b)",
        True,
    ),
    ("SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a) FROM t", True),
    ("SELECT count(*) FILTER (WHERE a > 1) FROM t GROUP BY ROLLUP (a, b)", True),
    ("SELECT coalesce(a, b), nullif(a, 0), greatest(a, b), least(a, b) FROM t", True),
    ("SELECT CASE WHEN a > 0 THEN 'p' ELSE 'n' END FROM t", True),
    (
        "SELECT EXTRACT(year FROM d), trim(s), substring(s FROM 1 FOR 2), position('a' IN s) "
        "FROM t",
        True,
    ),
    ("SELECT d AT TIME ZONE 'UTC', s SIMILAR TO 'a%', a IS DISTINCT FROM b FROM t", True),
    ("SELECT data->>'k', data ? 'k', data @> '{}' FROM t WHERE data ?| array['a']", True),
    ("SELECT json_build_object('a', 1), jsonb_agg(t) FROM t", True),
    ("SELECT json_object('a': 1), JSON_VALUE(j, '$.a'), j IS JSON FROM t", True),
    ("SELECT * FROM t TABLESAMPLE SYSTEM (10)", True),
    ("SELECT * FROM t ORDER BY a USING <", True),
    ("SELECT a OPERATOR(pg_catalog.+) b FROM t", True),
    ("SELECT x::regclass, pg_typeof(x), pg_backend_pid(), current_setting('search_path')", True),
    ("SELECT * FROM t WHERE a = $1 AND b = %s AND c = :c", True),
    ("SELECT /* DELETE FROM t; */ 1", True),
    ("SELECT 1 -- ; DELETE FROM t", True),
    ("/* leading */ SELECT * FROM t /* inner /* nested */ */ WHERE a = 1 -- trailing", True),
    ("SELECT 'DELETE FROM t; SELECT nextval(''s'')'", True),
    ("SELECT $$ DELETE FROM t $$", True),
    ("EXPLAIN SELECT * FROM t", True),
    ("EXPLAIN (FORMAT JSON, COSTS OFF) SELECT * FROM t", True),
    ("SELECT 1; SELECT 2", True),
    # side-effecting or unknown functions, anywhere
    ("SELECT nextval('s')", False),
    ("SELECT currval('s')", False),
    ("SELECT setval('s', 1)", False),
    ("SELECT lastval()", False),
    ("SELECT * FROM t WHERE x = (SELECT nextval('s'))", False),
    ("SELECT * FROM t ORDER BY nextval('s')", False),
    ("SELECT * FROM t WHERE id = lower(my_func(x))", False),
    ("SELECT count(*) FROM t GROUP BY a HAVING bool_or(my_check(a))", False),
    ("SELECT my_func(1)", False),
    ("SELECT * FROM my_srf()", False),
    ("SELECT * FROM ROWS FROM (generate_series(1, 2), my_srf())", False),
    ("SELECT * FROM t, LATERAL my_fn(t.id)", False),
    ("SELECT public.lower(x) FROM t", False),
    ("SELECT myschema.now()", False),
    ('SELECT "LOWER"(x) FROM t', False),
    ("SELECT pg_advisory_lock(1)", False),
    ("SELECT pg_try_advisory_lock(1)", False),
    ("SELECT pg_advisory_xact_lock(1)", False),
    ("SELECT pg_advisory_unlock_all()", False),
    ("SELECT set_config('a', 'b', false)", False),
    ("SELECT txid_current()", False),
    ("SELECT txid_current_if_assigned()", False),
    ("SELECT pg_current_xact_id()", False),
    ("SELECT pg_notify('ch', 'x')", False),
    ("SELECT pg_sleep(1)", False),
    ("SELECT pg_terminate_backend(123)", False),
    ("SELECT pg_cancel_backend(123)", False),
    ("SELECT pg_reload_conf()", False),
    ("SELECT pg_switch_wal()", False),
    ("SELECT pg_stat_reset()", False),
    ("SELECT pg_is_in_recovery()", False),
    ("SELECT lo_import('/etc/passwd')", False),
    ("SELECT lo_unlink(1)", False),
    ("SELECT dblink_exec('conn', 'DELETE FROM t')", False),
    ("SELECT query_to_xml('DELETE FROM t RETURNING 1', true, false, '')", False),
    ("SELECT pg_read_file('x')", False),
    ("SELECT a ### b FROM t", False),  # unknown operator
    ("SELECT a OPERATOR(public.+) b FROM t", False),
    ("SELECT * FROM t ORDER BY a USING ###", False),
    ("SELECT * FROM t TABLESAMPLE my_method (10)", False),
    ("SELECT f(a => 1)", False),
    # locking clauses, at any depth
    ("SELECT * FROM t FOR UPDATE", False),
    ("SELECT * FROM t FOR NO KEY UPDATE", False),
    ("SELECT * FROM t FOR SHARE", False),
    ("SELECT * FROM t FOR KEY SHARE", False),
    ("SELECT * FROM t FOR UPDATE SKIP LOCKED", False),
    ("SELECT * FROM t FOR UPDATE OF t NOWAIT", False),
    ("SELECT * FROM (SELECT * FROM t FOR SHARE) s", False),
    ("SELECT * FROM t WHERE a = (SELECT b FROM u FOR UPDATE)", False),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u FOR KEY SHARE)", False),
    ("WITH l AS (SELECT * FROM t FOR UPDATE) SELECT * FROM l", False),
    ("SELECT a FROM t UNION SELECT b FROM (SELECT b FROM u FOR UPDATE) x", False),
    # writes, data-modifying CTEs (any depth), SELECT INTO
    ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", False),
    ("WITH u AS (UPDATE t SET a = 1 RETURNING *) SELECT * FROM u", False),
    ("WITH i AS (INSERT INTO t VALUES (1) RETURNING *) SELECT 1", False),
    ("SELECT * FROM (WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d) x", False),
    (
        "WITH a AS (SELECT 1), b AS (WITH c AS (UPDATE t SET x = 1 RETURNING x) "
        "SELECT * FROM c) SELECT * FROM a, b",
        False,
    ),
    ("SELECT * INTO new_t FROM t", False),
    ("SELECT * INTO TEMP tmp FROM t", False),
    ("CREATE TABLE x AS SELECT * FROM t", False),
    ("INSERT INTO t VALUES (1)", False),
    ("UPDATE t SET a = 1", False),
    ("DELETE FROM t", False),
    ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", False),
    ("TRUNCATE t", False),
    ("SELECT 1; DELETE FROM t", False),
    ("SELECT 1; SELECT nextval('s')", False),
    ("SELECT 1 /* */; /* */ DELETE FROM t", False),
    ("SELECT/**/1", True),
    ("/* SELECT */ DELETE FROM t", False),
    ("DELETE/**/FROM t", False),
    ("SELECT 1 --\r\n; DELETE FROM t", False),
    ("SELECT 1 /* ; */ ; /* /* nested */ DELETE */ SELECT 2", True),
    # the comment nests, so this is `SELECT 1 AS "delete" FROM t`
    ("SELECT 1 /* /* nested */ ; */ DELETE FROM t", True),
    ("WITH x AS (/* DELETE FROM t */ SELECT 1) SELECT * FROM x", True),
    ("EXPLAIN ANALYZE DELETE FROM t", False),
    ("EXPLAIN DELETE FROM t", False),
    ("EXPLAIN ANALYZE SELECT * FROM t", False),
    ("EXPLAIN (ANALYZE false) SELECT * FROM t", False),
    ("EXPLAIN SELECT nextval('s')", False),
    # session and transaction control, cursors, utility statements
    ("BEGIN", False),
    ("BEGIN READ ONLY", False),
    ("START TRANSACTION READ ONLY", False),
    ("COMMIT", False),
    ("ROLLBACK", False),
    ("SET x = 1", False),
    ("SET TRANSACTION READ ONLY", False),
    ("SET default_transaction_read_only = on", False),
    ("RESET ALL", False),
    ("LISTEN ch", False),
    ("NOTIFY ch", False),
    ("DECLARE c CURSOR FOR SELECT 1", False),
    ("FETCH 10 FROM c", False),
    ("PREPARE p AS SELECT 1", False),
    ("EXECUTE p", False),
    ("CALL p(1)", False),
    ("DO $$ BEGIN PERFORM 1; END $$", False),
    ("COPY t TO STDOUT", False),
    ("COPY (SELECT 1) TO STDOUT", False),
    ("LOCK TABLE t IN SHARE MODE", False),
    ("VACUUM t", False),
    ("ANALYZE t", False),
    ("DISCARD ALL", False),
    # broken or odd texts
    ("", False),
    (";", False),
    ("-- comment only", False),
    ("SELECT 'unterminated", False),
    ("SELECT /* unterminated", False),
    ("SELECT 1\x00; DELETE FROM t", False),
    ("SELEKT 1", False),
    ("SELECT * FROM t WHERE x = 'a\\'; DELETE FROM t; --'", False),
    ("SELECT 1abc", False),
    # the bounds of these strings depend on standard_conforming_strings: with it
    # off, the first is `SELECT '...'; DELETE FROM t`
    ("SELECT 'a\\', ' ; DELETE FROM t; --'", False),
    ("SELECT 'a\\'' FROM t", False),
    # backslashes elsewhere do not move string bounds
    ("SELECT * FROM t WHERE name LIKE 'a\\_b%' ESCAPE '\\\\'", True),
    ("SELECT 'C:\\dir\\file', E'\\'' FROM t", True),
]


@pytest.mark.parametrize(("sql", "read_only"), PG_READ_ONLY)
def test_read_only_postgresql(sql, read_only):
    assert analyze(sql).read_only is read_only
    assert analyze_fresh(sql).read_only is read_only


def test_corpus_is_large_and_tricky():
    assert len(PG_READ_ONLY) >= 60
    assert sum(1 for _, ro in PG_READ_ONLY if not ro) >= 60


MYSQL_READ_ONLY = [
    ("SELECT * FROM t WHERE id = 1", True),
    ("SELECT NOW(), CURDATE(), IFNULL(a, 1), SUBSTR(x, 1, 2), COUNT(*) FROM t", True),
    ("SELECT DATE_FORMAT(d, '%Y'), JSON_EXTRACT(j, '$.a'), CONCAT(a, b) FROM t", True),
    ("SELECT IF(a, 1, 2), CASE WHEN a THEN 1 END, CAST(a AS CHAR) FROM t", True),
    ("SELECT a FROM t UNION SELECT b FROM u", True),
    ("WITH c AS (SELECT * FROM t) SELECT * FROM c", True),
    ("SELECT * FROM t WHERE id = %s AND name = %(name)s", True),
    ("SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", True),
    ("SELECT * FROM t /* FOR UPDATE */", True),
    ("SELECT 1 # ; DELETE FROM t", True),
    ("SHOW TABLES", True),
    ("SHOW PROCESSLIST", True),
    ("DESCRIBE t", True),
    ("EXPLAIN SELECT * FROM t", True),
    ("SELECT * FROM t FOR UPDATE", False),
    ("SELECT * FROM t FOR SHARE", False),
    ("SELECT * FROM t LOCK IN SHARE MODE", False),
    ("SELECT * FROM t WHERE id = %s FOR UPDATE", False),
    ("SELECT * FROM (SELECT * FROM t FOR UPDATE) x", False),
    ("SELECT 1 /*! FOR UPDATE */", False),  # executable comment: it is code
    ("SELECT * FROM t /*!50000 LOCK IN SHARE MODE */", False),
    ("SELECT GET_LOCK('a', 1)", False),
    ("SELECT RELEASE_LOCK('a')", False),
    ("SELECT IS_FREE_LOCK('a')", False),
    ("SELECT SLEEP(1)", False),
    ("SELECT BENCHMARK(1000, MD5('x'))", False),
    ("SELECT LAST_INSERT_ID()", False),
    ("SELECT FOUND_ROWS()", False),
    ("SELECT LOAD_FILE('/etc/passwd')", False),
    ("SELECT NEXTVAL(s)", False),
    ("SELECT NEXT VALUE FOR s", False),
    ("SELECT my_udf(a) FROM t", False),
    ("SELECT mydb.f(1)", False),
    ("SELECT @a := 1", False),
    ("SELECT @a", False),
    ("SELECT @@version", False),
    ("SELECT 1 INTO @x", False),
    ("SELECT * FROM t INTO OUTFILE '/tmp/x'", False),
    ("EXPLAIN ANALYZE SELECT * FROM t", False),
    ("EXPLAIN DELETE FROM t", False),
    ("SELECT 1; DELETE FROM t", False),
    ("INSERT INTO t VALUES (1)", False),
    ("REPLACE INTO t VALUES (1)", False),
    ("UPDATE t SET a = 1", False),
    ("DELETE FROM t", False),
    ("BEGIN", False),
    ("SET autocommit = 0", False),
    ("LOCK TABLES t READ", False),
    ("CALL p()", False),
    ("DO SLEEP(1)", False),
    ("USE db", False),
    ("SELECT 'a\\_b', 'c\\\\' FROM t", True),
    # string bounds that depend on NO_BACKSLASH_ESCAPES / ANSI_QUOTES
    ("SELECT 'it\\'s' FROM t", False),
    ("SELECT 'a\\'; DELETE FROM t; -- '", False),
    ('SELECT "lower"(x) FROM t', False),
    ('SELECT * FROM t WHERE a = "x"', True),
    ("SELECT 1 /*!99999 , 2 */", False),  # version-conditional code
    ("garbage", False),
]


@pytest.mark.parametrize(("sql", "read_only"), MYSQL_READ_ONLY)
def test_read_only_mysql(sql, read_only):
    assert analyze(sql, "mysql").read_only is read_only
    assert analyze_fresh(sql, "mariadb").read_only is read_only


SQLITE_READ_ONLY = [
    ("SELECT * FROM t WHERE a = ? AND b = :b AND c = @c AND d = $d", True),
    (
        "SELECT random(), lower(x), datetime('now'), strftime('%Y', d), json_extract(j, '$.a') "
        "FROM t",
        True,
    ),
    ("SELECT total(a), group_concat(b), typeof(c) FROM t", True),
    ("SELECT * FROM json_each('[1]')", True),
    (
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
        "SELECT * FROM r",
        True,
    ),
    ("SELECT last_insert_rowid()", False),
    ("SELECT changes()", False),
    ("SELECT total_changes()", False),
    ("SELECT load_extension('x')", False),
    ("SELECT my_func(1)", False),
    ("SELECT * FROM t FOR UPDATE", False),
    ("PRAGMA table_info(t)", False),
    ("PRAGMA journal_mode = WAL", False),
    ("ATTACH DATABASE 'x' AS y", False),
    ("INSERT OR REPLACE INTO t VALUES (1)", False),
    ("BEGIN IMMEDIATE", False),
    ("VACUUM", False),
]


@pytest.mark.parametrize(("sql", "read_only"), SQLITE_READ_ONLY)
def test_read_only_sqlite(sql, read_only):
    assert analyze(sql, "sqlite").read_only is read_only


@pytest.mark.parametrize(
    ("sql", "read_only"),
    [
        ("SELECT lower(a) FROM t WHERE b = ?", True),
        ("SELECT * FROM t FOR UPDATE", False),
        ("SELECT nextval('s')", False),
        ("SELECT 1 /* /* */ ; DELETE FROM t; /* */ */", True),  # nested comment, like sqlglot
        ("DELETE FROM t", False),
    ],
)
def test_read_only_generic(sql, read_only):
    assert analyze(sql, "some-other-db").read_only is read_only
