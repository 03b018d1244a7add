"""Running the view: `run_once` prints one snapshot; `run_live` polls every interval and
redraws the view in place on a terminal, or prints each snapshot as plain text when the output
is a pipe or a file (a log, ``| tee``). Ctrl-C or SIGTERM ends it with status 0. The polling
lives here; what is drawn is `render_top`'s business."""

from __future__ import annotations

import time
from collections.abc import Iterator

from rich.console import Console
from rich.live import Live

from .._signals import sigterm_as_ctrl_c
from ._fetch import SummaryFetcher, SummaryUnavailable
from ._options import TopOptions
from ._render import render_top
from ._snapshot import Snapshot

EXIT_OK = 0
EXIT_UNREADABLE = 1

Poll = tuple[Snapshot | None, Snapshot | None, str | None]  # previous, current, error


def run_top(options: TopOptions, console: Console | None = None) -> int:
    """``dbsight top``: the exit status (0, or 1 when ``--once`` cannot read the summary)."""
    console = console or Console(width=options.width)
    with sigterm_as_ctrl_c():
        try:
            if options.once:
                return run_once(options, console)
            return run_live(options, console)
        except KeyboardInterrupt:
            return EXIT_OK


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
    """Poll every ``options.interval_s`` until Ctrl-C (status 0): on a terminal the view is
    redrawn in place, full-screen like top(1); otherwise every poll is printed below the
    last one. A failed poll is shown above the last good data and retried at the next tick."""
    try:
        with SummaryFetcher(options) as fetcher:
            if console.is_terminal:
                _redraw(fetcher, options, console)
            else:
                _print_each(fetcher, options, console)
    except KeyboardInterrupt:
        pass
    return EXIT_OK


def _polls(fetcher: SummaryFetcher, options: TopOptions) -> Iterator[Poll]:
    """One poll every ``options.interval_s``, for ever; a failed one keeps the last good
    polls (the rates span the gap)."""
    previous: Snapshot | None = None
    current: Snapshot | None = None
    while True:
        started = time.monotonic()
        error: str | None = None
        try:
            snapshot = fetcher.fetch()
        except SummaryUnavailable as exc:
            error = str(exc)
        else:
            # rates compare two polls of the same instances: when one drops out or comes
            # back, the totals jump, so the rates start again from this poll
            same = current is not None and current.instances == snapshot.instances
            previous, current = (current if same else None), snapshot
        yield previous, current, error
        time.sleep(max(0.0, options.interval_s - (time.monotonic() - started)))


def _redraw(fetcher: SummaryFetcher, options: TopOptions, console: Console) -> None:
    with Live(
        render_top(None, None, options),
        console=console,
        screen=True,
        auto_refresh=False,
        vertical_overflow="crop",
    ) as live:
        for previous, current, error in _polls(fetcher, options):
            live.update(render_top(previous, current, options, error), refresh=True)


def _print_each(fetcher: SummaryFetcher, options: TopOptions, console: Console) -> None:
    for previous, current, error in _polls(fetcher, options):
        # each poll reaches a reader (tail -f, a log shipper) at once: rich flushes a print;
        # a reader that goes away (`| head`) ends the command quietly, as rich handles it
        console.print(render_top(previous, current, options, error), "", sep="\n")
