"""The HTML report: one self-contained file with a service's top statements, their latency,
the traffic over time, slow queries with their plans and findings, index advice, database
checks and N+1 findings, from one or several running dbsight instances, a proxy capture
and (with a DSN) the database itself.

    inputs = ReportInputs(summaries=[fetch_summary("http://127.0.0.1:8000")])
    Path("report.html").write_text(build_report(inputs))
"""

from ._document import report_json
from ._gather import gather
from ._html import CSP, build_report
from ._inputs import (
    CaptureStatement,
    ReportError,
    ReportInputs,
    fetch_summary,
    read_capture,
    summary_url,
)
from ._timeline import Bucket, Timeline

__all__ = [
    "CSP",
    "Bucket",
    "CaptureStatement",
    "ReportError",
    "ReportInputs",
    "Timeline",
    "build_report",
    "fetch_summary",
    "gather",
    "read_capture",
    "report_json",
    "summary_url",
]
