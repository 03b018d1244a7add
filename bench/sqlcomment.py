"""What reading sqlcommenter comments costs the proxy per statement, against what the comment
would cost it unread.

A statement tagged with ``sqlcommenter=full`` is a new text for every request: the analysis
cache, keyed by text, misses on it. The proxy splits the comment off first
(`split_comment`), so the statement's analysis comes from the cache and only the comment is
parsed. Measured in the same run, per statement (median of rounds, µs):

  baseline   analyze(text with a new comment)       what the proxy paid before (no context)
  full       split_comment + analyze(statement)      a new comment per statement
  route      split_comment + analyze(statement)      the same comment every time (cached)
  none       the ``"/*" in sql`` test                 a statement without a comment

    ./dev bench sqlcomment [--statements 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from dbsight.core._comment_context import split_comment
from dbsight.core._sqlcomment import format_comment
from dbsight.sql import analyze, clear_cache

STATEMENT = (
    "SELECT o.id, o.total, c.email FROM orders o JOIN customers c ON c.id = o.customer_id "
    "WHERE o.id = $1 AND o.tenant = $2 ORDER BY o.created_at DESC LIMIT 10"
)


def full_texts(n: int, offset: int) -> list[str]:
    return [
        STATEMENT + " " + format_comment({
            "route": "/orders/{id}",
            "request_id": f"{offset + i:032x}",
            "traceparent": f"00-{offset + i + 1:032x}-{offset + i + 1:016x}-01",
        })
        for i in range(n)
    ]


def per_call_us(run: Callable[[str], object], texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        run(text)
    return (time.perf_counter() - started) / len(texts) * 1e6


def split_and_analyze(text: str) -> object:
    body, comment = split_comment(text) if "/*" in text else (text, None)
    return analyze(body), comment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.statements
    route_text = STATEMENT + " " + format_comment({"route": "/orders/{id}"})
    results: dict[str, list[float]] = {"baseline": [], "full": [], "route": [], "none": []}
    for round_ in range(args.rounds):
        clear_cache()
        analyze(STATEMENT)
        results["baseline"].append(per_call_us(analyze, full_texts(n, 2 * round_ * n)))
        results["full"].append(per_call_us(split_and_analyze, full_texts(n, (2 * round_ + 1) * n)))
        results["route"].append(per_call_us(split_and_analyze, [route_text] * n))
        results["none"].append(per_call_us(lambda text: "/*" in text, [STATEMENT] * n))
    baseline = statistics.median(results["baseline"])
    print(f"{'case':10} {'µs/statement':>13} {'ratio to baseline':>18}")
    for case, values in results.items():
        value = statistics.median(values)
        print(f"{case:10} {value:13.2f} {value / baseline:18.2f}")


if __name__ == "__main__":
    main()
