"""How ``dbsight --help`` reads: the terminal wraps the text, and flags show no value type.

Docstrings are wrapped at the source's line length; `reflow` joins each paragraph into one
line, so the help is wrapped to the terminal's width instead of breaking mid-sentence where
the source did. A flag (``--once``) takes no value, so the ``<bool>`` type newer Typer prints
beside it would only suggest one: `Command` and `Group` leave the type column of flags empty.
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup


def reflow(text: str | None) -> str:
    """``text`` with each paragraph on one line (paragraphs are kept apart by a blank line)."""
    paragraphs = inspect.cleandoc(text or "").split("\n\n")
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in paragraphs)


def _untyped_flags(params: list[Any]) -> list[Any]:
    for param in params:
        # an empty metavar is what the help prints as the type; a flag's has no other use
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose flags (``--help`` too) show no value type in the help."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


class Group(TyperGroup):
    """The ``dbsight`` group, with the flags of `Command`."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _untyped_flags(super().get_params(ctx))


def group(name: str, help: str) -> typer.Typer:
    """A ``dbsight`` command group: its help when called bare, no shell-completion options,
    and the flags of `Command` (the same for ``dbsight`` and each of its sub-groups)."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False, cls=Group)
