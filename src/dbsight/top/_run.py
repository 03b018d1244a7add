"""Running the view: `run_once` prints one snapshot, `run_live` redraws it after every poll
until Ctrl-C. The polling lives here; what is drawn is `render_top`'s business."""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live

from ._fetch import SummaryFetcher, SummaryUnavailable
from ._options import TopOptions
from ._render import render_top
from ._snapshot import Snapshot

EXIT_OK = 0
EXIT_UNREADABLE = 1


def run_top(options: TopOptions, console: Console | None = None) -> int:
    """``dbsight top``: the exit status (0, or 1 when ``--once`` cannot read the summary)."""
    console = console or Console(width=options.width)
    if options.once:
        return run_once(options, console)
    return run_live(options, console)


def run_once(options: TopOptions, console: Console) -> int:
    """One poll printed as plain tables (pipeable); a failure is one line on stderr."""
    with SummaryFetcher(options) as fetcher:
        try:
            snapshot = fetcher.fetch()
        except SummaryUnavailable as exc:
            Console(stderr=True, width=options.width).print(
                f"dbsight top: {exc}", markup=False, highlight=False, soft_wrap=True
            )
            return EXIT_UNREADABLE
    console.print(render_top(None, snapshot, options))
    return EXIT_OK


def run_live(options: TopOptions, console: Console) -> int:
    """Poll every ``options.interval_s`` and redraw; a failed poll is shown above the last
    good data and retried at the next tick. Ctrl-C ends it with status 0."""
    previous: Snapshot | None = None
    current: Snapshot | None = None
    try:
        with (
            SummaryFetcher(options) as fetcher,
            Live(
                render_top(None, None, options),
                console=console,
                screen=console.is_terminal,  # a full-screen view, like top(1)
                auto_refresh=False,
                vertical_overflow="crop",
            ) as live,
        ):
            while True:
                started = time.monotonic()
                error: str | None = None
                try:
                    snapshot = fetcher.fetch()
                except SummaryUnavailable as exc:
                    error = str(exc)  # keep the last good polls: the rates span the gap
                else:
                    previous, current = current, snapshot
                live.update(render_top(previous, current, options, error), refresh=True)
                time.sleep(max(0.0, options.interval_s - (time.monotonic() - started)))
    except KeyboardInterrupt:
        return EXIT_OK
