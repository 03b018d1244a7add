"""Progress of a long command on stderr: rich bars while stderr is a terminal, nothing at all
otherwise (into a pipe or a file the report alone is written), gone once the work is done.

The analysis APIs (`dbsight.advise.advise_indexes`, `dbsight.check.run_checks`,
`dbsight.replay.replay_async`, `dbsight.report.gather`, the workload loaders) all take the
same callback, ``progress(stage, done, total)``; `progress_on` makes one that draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["ProgressCallback", "progress_on"]

# progress(stage, done, total): ``done`` of ``total`` units of ``stage`` (0 total: unknown)
ProgressCallback = Callable[[str, int, int], None]


@contextmanager
def progress_on(
    label: str,
    console: Console | None = None,
    *,
    describe: Callable[[str], str] | None = None,
    single: bool = False,
) -> Iterator[ProgressCallback | None]:
    """A ``progress(stage, done, total)`` callback drawing on ``console`` (stderr by default)
    when it is a terminal, None otherwise. Each stage gets a bar of its own, named
    ``describe(stage)``; with ``single`` there is one bar whose name follows the stage (a
    stage there is the step under way, such as the check running)."""
    # rich only here: the APIs import this module for the callback's type alone
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import (
        BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn,
    )  # fmt: skip

    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    name = describe or (lambda stage: stage)
    bar = Progress(
        SpinnerColumn(), TextColumn(f"[bold]{escape(label)}[/bold] {{task.description}}"),
        BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    )  # fmt: skip
    tasks: dict[str, Any] = {}  # stage -> rich TaskID

    def update(stage: str, done: int, total: int) -> None:
        key = "" if single else stage
        text = escape(name(stage))
        if key not in tasks:
            tasks[key] = bar.add_task(text, total=total or None)
        bar.update(tasks[key], description=text, completed=done, total=total or None)

    with bar:
        yield update
