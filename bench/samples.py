"""What the parameter sampler (``advice_samples``) costs per statement, in-process.

The recorder calls ``ParameterSamples.after_query`` for every statement. After a
fingerprint's first few calls it only counts the call and compares with the next call its
reservoir wants; this measures that steady state, beside the statistics table's own hook
(``StatsTable.observe``) for scale, over a mix of fingerprints. Usage:

    ./dev bench samples [--calls 1000000] [--fingerprints 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from dbsight.core import Recorder, Settings
from dbsight.stats import ParameterSamples, StatsTable

TARGET_NS = 300.0  # the after hooks' budget per statement is a few hundred ns


def contexts(fingerprints: int) -> list[object]:
    recorder = Recorder(Settings(tracing_enabled=False))
    made = []
    for i in range(fingerprints):
        ctx = recorder.start(
            f"SELECT * FROM t{i} WHERE id = $1", "postgresql", "bench", (i,), explainer=object()
        )
        made.append(recorder.finish(ctx, 1))
    return made


def per_call_ns(hook: object, events: list[object], calls: int) -> float:
    rounds = calls // len(events)
    started = time.perf_counter()
    for _ in range(rounds):
        for event in events:
            hook(event, event)  # type: ignore[operator]
    return (time.perf_counter() - started) / (rounds * len(events)) * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--fingerprints", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    events = contexts(args.fingerprints)
    sampler = ParameterSamples(8)
    table = StatsTable()
    per_call_ns(sampler.after_query, events, args.calls)  # warm: reservoirs full
    per_call_ns(table.observe, events, args.calls)
    sampled = [per_call_ns(sampler.after_query, events, args.calls) for _ in range(args.repeats)]
    stats = [per_call_ns(table.observe, events, args.calls) for _ in range(args.repeats)]
    total = args.calls * (args.repeats + 1)
    print(f"parameter sampler  {statistics.median(sampled):6.0f} ns per statement")
    print(f"statistics table   {statistics.median(stats):6.0f} ns per statement (for scale)")
    print(
        f"samples taken: {sampler.taken} of {total} calls "
        f"({args.fingerprints} fingerprints, 8 each)"
    )
    verdict = "within" if statistics.median(sampled) <= TARGET_NS else "OVER"
    print(f"{verdict} the {TARGET_NS:.0f} ns budget")


if __name__ == "__main__":
    main()
