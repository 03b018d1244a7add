"""What ``dbsight --help`` and ``--version`` show: the version, help text wrapped by the
terminal (no line breaks of the source inside a paragraph), flags without a ``<bool>`` value
type, and the commands there are (``example`` was folded into ``demo --duration``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import dbsight
from dbsight.cli import app as cli
from dbsight.proxy import ProxyConfig

ROOT = Path(__file__).resolve().parents[2]
DBSIGHT = [sys.executable, "-c", "from dbsight.cli import main; main()"]
COMMANDS = ["demo", "analyze", "top", "proxy", "check", "replay", "report", "advise", "version"]


def help_of(*args: str, width: int = 200) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    return result.output


def test_version_flag_prints_the_version() -> None:
    done = subprocess.run([*DBSIGHT, "--version"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, dbsight.__version__, "")


def test_the_version_command_still_prints_it() -> None:
    result = CliRunner().invoke(cli, ["version"])
    assert (result.exit_code, result.output.strip()) == (0, dbsight.__version__)


@pytest.mark.parametrize("command", [[], *([name] for name in COMMANDS)])
def test_flags_show_no_value_type(command: list[str]) -> None:
    text = help_of(*command)
    assert "--help" in text
    assert "<bool>" not in text
    assert "BOOLEAN" not in text


def test_help_paragraphs_are_not_broken_where_the_source_was() -> None:
    group = typer.main.get_command(cli)
    assert isinstance(group, typer.core.TyperGroup)
    for name, command in group.commands.items():
        for paragraph in (command.help or "").split("\n\n"):
            assert "\n" not in paragraph, f"{name}: {paragraph!r}"
        for param in command.params:
            assert "\n" not in (getattr(param, "help", None) or ""), f"{name} {param.name}"


def test_a_paragraph_is_wrapped_to_the_terminal_width() -> None:
    # with 200 columns, the demo's second paragraph fills its lines (4, not the source's 9):
    # every line but its last is wrapped near the terminal's width, not where the source was
    lines = help_of("demo", width=200).splitlines()
    start = next(i for i, line in enumerate(lines) if "Starts an embedded PostgreSQL" in line)
    end = next(i for i, line in enumerate(lines) if "also on Ctrl-C." in line)
    assert 0 < end - start < 5
    assert all(len(line.rstrip()) > 180 for line in lines[start:end])
    assert "(over 400k rows at the default scale) and an embedded Redis, serves" in lines[start]


def test_admin_token_help_states_the_minimum_length_the_proxy_enforces() -> None:
    text = " ".join(help_of("proxy").split())
    stated = re.search(r"at least (\d+) characters", text)
    assert stated is not None, text
    minimum = next(
        rule.min_length
        for rule in ProxyConfig.model_fields["admin_token"].metadata
        if hasattr(rule, "min_length")
    )
    assert int(stated.group(1)) == minimum


def test_example_is_gone_and_demo_duration_replaces_it() -> None:
    result = CliRunner().invoke(cli, ["example"])
    assert result.exit_code == 2
    assert "No such command" in result.output
    assert "--duration" in help_of("demo")


def test_dev_has_no_example_subcommand() -> None:
    done = subprocess.run(
        [str(ROOT / "dev"), "example"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "./dev demo --duration 15" in done.stdout
    assert "./dev example" not in done.stdout
