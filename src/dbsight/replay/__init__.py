"""Replay a workload capture against another database and report, per statement, what got
slower or started failing (``dbsight replay``)."""

from ._compare import REGRESSION_MS, REGRESSION_RATIO, FingerprintResult, regression_reason
from ._errors import ReplayError
from ._reader import Capture, read_capture
from ._report import ReplayReport, render
from ._run import compare, replay, replay_async
from ._stats import Side

__all__ = [
    "REGRESSION_MS",
    "REGRESSION_RATIO",
    "Capture",
    "FingerprintResult",
    "ReplayError",
    "ReplayReport",
    "Side",
    "compare",
    "read_capture",
    "regression_reason",
    "render",
    "replay",
    "replay_async",
]
