"""The progress every analysis command shows: bars on a terminal, nothing into a pipe."""

from __future__ import annotations

import io

from rich.console import Console

from dbsight._progress import progress_on


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=100), out


def test_quiet_when_stderr_is_not_a_terminal() -> None:
    console = Console(file=io.StringIO(), force_terminal=False)
    with progress_on("advise", console) as progress:
        assert progress is None


def test_a_bar_per_stage_named_by_describe() -> None:
    console, out = _terminal()
    names = {"parse": "reading statements"}
    with progress_on("advise", console, describe=lambda s: names.get(s, s)) as progress:
        assert progress is not None
        progress("parse", 3, 10)
        progress("baseline", 0, 0)  # an unknown total: a bar without one
        progress("parse", 10, 10)
    text = out.getvalue()
    assert "advise" in text and "reading statements" in text and "baseline" in text
    assert "10/10" in text


def test_single_keeps_one_bar_whose_name_follows_the_stage() -> None:
    console, out = _terminal()
    with progress_on("check", console, single=True) as progress:
        assert progress is not None
        progress("unused_indexes", 1, 2)
        progress("[bold]sequences", 2, 2)  # markup in a stage is shown as it is
    text = out.getvalue()
    assert "[bold]sequences" in text
    assert "unused_indexes" not in text.rsplit("check", 1)[-1]  # the last frame: one bar
