#!/usr/bin/env python3
"""Rough costs of ``dbsight.sql.analyze`` (not a test: numbers vary by machine).

    python scripts/bench_sql.py

Prints, per call: exact-text cache hit, masked-text cache hit (new literals,
same shape), lexer alone, full analysis (no cache) for PostgreSQL and MySQL,
and the pglast building blocks, plus a ``json.loads`` reference so numbers
from different machines can be compared.
"""

from __future__ import annotations

import itertools
import json
import timeit

from pglast import parser

from dbsight.sql import analyze, clear_cache, mask_literals, set_cache_size
from dbsight.sql._analyze import analyze_uncached

PG = (
    "SELECT a.id, a.abalance, b.bbalance FROM pgbench_accounts a "
    "JOIN pgbench_branches b ON b.bid = a.bid WHERE a.aid = {n} AND a.bid IN (1, 2, 3) "
    "AND a.filler <> 'x' AND b.bbalance > (SELECT avg(bbalance) FROM pgbench_branches) "
    "ORDER BY a.aid LIMIT 10"
)
MYSQL = (
    "SELECT a.id, a.abalance, b.bbalance FROM accounts a "
    "JOIN branches b ON b.bid = a.bid WHERE a.aid = {n} AND a.bid IN (1, 2, 3) "
    "AND a.filler <> 'x' AND b.bbalance > (SELECT avg(bbalance) FROM branches) "
    "ORDER BY a.aid LIMIT 10"
)


def per_call(fn, number: int) -> float:
    best = min(timeit.repeat(fn, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    set_cache_size(4096)
    q = PG.format(n=1)
    print(f"statement: {len(q)} chars")
    analyze(q)
    print(f"exact-text cache hit        {per_call(lambda: analyze(q), 200_000):8.2f} us")

    counter = itertools.count(1000)
    texts = [PG.format(n=next(counter)) for _ in range(200_000)]
    it = iter(texts)
    print(f"masked cache hit (new text) {per_call(lambda: analyze(next(it)), 20_000):8.2f} us")
    print(f"lexer only (mask_literals)  {per_call(lambda: mask_literals(q), 20_000):8.2f} us")

    def full_pg() -> None:
        clear_cache()
        analyze_uncached(q)

    def full_mysql() -> None:
        clear_cache()
        analyze_uncached(MYSQL.format(n=1), "mysql")

    print(f"full analysis, postgresql   {per_call(full_pg, 2_000):8.2f} us")
    print(f"full analysis, mysql        {per_call(full_mysql, 200):8.2f} us")
    parse_json = per_call(lambda: parser.parse_sql_json(q), 5_000)
    print(f"  pglast parse_sql_json     {parse_json:8.2f} us")
    js = parser.parse_sql_json(q)
    print(f"  json.loads ({len(js)} B)     {per_call(lambda: json.loads(js), 5_000):8.2f} us")
    print(f"  pglast fingerprint        {per_call(lambda: parser.fingerprint(q), 5_000):8.2f} us")
    print(f"  pglast parse_sql (AST)    {per_call(lambda: parser.parse_sql(q), 500):8.2f} us")
    # machine speed reference (about 8 us on a 2023 laptop)
    print(f"reference sum(range(1000))  {per_call(lambda: sum(range(1000)), 5_000):8.2f} us")


if __name__ == "__main__":
    main()
