"""Progress of `dbsight check` on stderr: a spinner naming the running check, on a terminal
only (quiet into a pipe or a file, and gone once the report prints)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

from ._runner import Progress as ProgressCallback

__all__ = ["check_progress"]


@contextmanager
def check_progress() -> Iterator[ProgressCallback | None]:
    if not sys.stderr.isatty():
        yield None
        return
    bar = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=Console(stderr=True), transient=True,
    )  # fmt: skip
    with bar:
        task = bar.add_task("checking", total=None)

        def update(name: str, done: int, total: int) -> None:
            bar.update(task, description=f"checking {name}" if name else "done",
                       completed=done, total=total)  # fmt: skip

        yield update
