"""``dbsight top``: a live terminal view of the top statements of a running dbsight, read
from its ``/metrics/summary`` (an instrumented service, or the proxy's admin port).

    from dbsight.top import TopOptions, run_top
    run_top(TopOptions(url="http://127.0.0.1:9187", sort="p95"))   # until Ctrl-C

The view is a pure function of two polls (`render_top`, with the rates of `interval_rates`),
so it can be drawn from any two summaries; `SummaryFetcher` does the HTTP.
"""

from ._fetch import SummaryFetcher, SummaryUnavailable
from ._options import DEFAULT_URL, SORT_KEYS, TopOptions
from ._rates import IntervalRates, StatementRate, interval_rates
from ._render import render_top
from ._run import run_live, run_once, run_top
from ._snapshot import Snapshot, SummaryError, parse_summary

__all__ = [
    "DEFAULT_URL",
    "SORT_KEYS",
    "IntervalRates",
    "Snapshot",
    "StatementRate",
    "SummaryError",
    "SummaryFetcher",
    "SummaryUnavailable",
    "TopOptions",
    "interval_rates",
    "parse_summary",
    "render_top",
    "run_live",
    "run_once",
    "run_top",
]
