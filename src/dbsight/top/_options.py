"""`TopOptions`: what ``dbsight top`` shows and how it polls, validated once."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..stats import ORDER_BY, FingerprintStats, stats_order_key

# --sort: what dbsight.stats.top(order_by=...) accepts, largest first; the service orders its
# statements the same way (/metrics/summary?order_by=), so the view sorts what it was sent.
SORT_KEYS: Mapping[str, Callable[[FingerprintStats], float]] = {
    name: stats_order_key(name) for name in ORDER_BY
}

DEFAULT_URL = "http://127.0.0.1:9187"


@dataclass(frozen=True, slots=True)
class TopOptions:
    """``url``: base URL of a dbsight HTTP surface (``/metrics/summary`` is appended unless
    it is there already); ``more_urls``: other instances of the service (or other services),
    merged into one view by fingerprint as ``dbsight report`` merges several ``--from``. ``details``: rows of the N+1 and slow-query sections (0 hides
    them). ``once``: one plain snapshot, no per-interval rates. ``width``: the console width
    (None: the terminal's)."""

    url: str = DEFAULT_URL
    more_urls: tuple[str, ...] = ()
    interval_s: float = 2.0
    limit: int = 20
    sort: str = "total_time"
    token: str | None = field(default=None, repr=False)  # a secret: kept out of reprs
    timeout_s: float = 5.0
    details: int = 5
    once: bool = False
    width: int | None = None

    def __post_init__(self) -> None:
        if self.sort not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)} (got {self.sort!r})")
        if not self.interval_s > 0:
            raise ValueError(f"interval_s must be positive (got {self.interval_s})")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive (got {self.timeout_s})")
        if self.limit < 1:
            raise ValueError(f"limit must be at least 1 (got {self.limit})")
        if self.details < 0:
            raise ValueError(f"details must be 0 or more (got {self.details})")
        if self.width is not None and self.width < 40:
            raise ValueError(f"width must be at least 40 columns (got {self.width})")

    @property
    def summary_url(self) -> str:
        """The (first) ``/metrics/summary`` URL polled."""
        return _summary_url(self.url)

    @property
    def summary_urls(self) -> tuple[str, ...]:
        """Every ``/metrics/summary`` URL polled, each once."""
        return tuple(dict.fromkeys(_summary_url(url) for url in (self.url, *self.more_urls)))


def _summary_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "http://" + url
    return url if url.endswith("/metrics/summary") else url + "/metrics/summary"
