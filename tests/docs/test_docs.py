"""The documentation against the code: README.md and docs/*.md name only settings, metrics,
options and pages that exist, and the generated tables are current.

No server is needed: these read the pages, the source and the command line's definition.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shlex
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.main

from dbsight import cli
from dbsight.core._settings import ENV_PREFIX, Settings
from dbsight.core._settings_env import OTHER_PREFIXES, OTHER_VARIABLES
from dbsight.demo.app import ENV_DSN as DEMO_ENV_DSN
from dbsight.demo.app import ENV_INSTRUMENT as DEMO_ENV_INSTRUMENT
from dbsight.proxy._config import ProxyConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = [README, *sorted(DOCS.glob("*.md"))]


@cache
def gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def name(page: Path) -> str:
    return str(page.relative_to(ROOT))


# -- generated tables -----------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES[1:], ids=name)
def test_generated_tables_are_current(page: Path) -> None:
    current = text(page)
    assert gen_docs().render(current, name(page)) == current, (
        f"{name(page)} is out of date: run .venv/bin/python scripts/gen_docs.py and commit it"
    )


def test_every_generated_block_is_on_a_page() -> None:
    used = {block for page in PAGES for block in gen_docs().blocks_in(text(page))}
    assert used == set(gen_docs().BLOCKS)


def test_every_field_has_a_meaning() -> None:
    for render in gen_docs().BLOCKS.values():
        render()  # raises MissingMeaning naming the field


def test_settings_page_lists_every_setting_with_its_variable() -> None:
    page = text(DOCS / "settings.md")
    for field in Settings.model_fields:
        assert f"| `{field}` | `{ENV_PREFIX}{field.upper()}` |" in page, field
    for key in ProxyConfig.model_fields:
        assert f"| `{key}` |" in page, key


def test_proxy_topic_tables_cover_every_key_once() -> None:
    grouped = [key for keys in gen_docs().PROXY_GROUPS.values() for key in keys]
    assert sorted(grouped) == sorted(ProxyConfig.model_fields)


def test_environment_variables_named_exist() -> None:
    known = {ENV_PREFIX + field.upper() for field in Settings.model_fields} | OTHER_VARIABLES
    known |= {"DBSIGHT_TEST_REQUIRE_SERVERS", "DBSIGHT_TEST_PG_DSN", "DBSIGHT_TEST_MYSQL_DSN",
              "DBSIGHT_TEST_REDIS_URL", "DBSIGHT_TEST_ARTIFACTS"}
    known |= {prefix.rstrip("_") for prefix in OTHER_PREFIXES}  # named as DBSIGHT_DEMO_*
    known |= {DEMO_ENV_DSN, DEMO_ENV_INSTRUMENT}  # what the demo service reads (deployment.md)
    for page in PAGES:
        # the warning about a misspelt variable shows one on purpose
        lines = [line for line in text(page).splitlines() if "is not a dbsight setting" not in line]
        for variable in set(re.findall(r"\bDBSIGHT_[A-Z0-9_]*[A-Z0-9]", "\n".join(lines))):
            assert variable in known, f"{name(page)} names {variable}, which nothing reads"


# -- metrics --------------------------------------------------------------------------------------

_FAMILY = re.compile(
    r"\b(?P<kind>Counter|Gauge|Histogram)(?:MetricFamily)?\(\s*\"(?P<name>[a-z_]+)\""
    r"|_collector\(\s*(?P<kind2>Counter|Gauge|Histogram),\s*\"(?P<name2>[a-z_]+)\""
)
# The proxy's pool statistics are declared as {"stat": ("family", "help")} tables.
_POOL_TABLE = re.compile(r"_POOL_(?P<kind>COUNTERS|GAUGES) = \{(?P<body>.*?)\n\}", re.S)
_DOC_METRIC = re.compile(
    r"`(?P<name>(?:(?:db_client|http_server|dbsight_observer|dbsight_notifications|proxy)_"
    r"|cache_operation"
    r"|external_api_request)[a-z_]+)(?:\{[^`]*\})?`"
)


@cache
def code_families() -> dict[str, str]:
    """Every metric family the source declares: exposed name -> type."""
    families: dict[str, str] = {}
    for path in (ROOT / "src" / "dbsight").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for match in _FAMILY.finditer(source):
            kind = (match["kind"] or match["kind2"]).lower()
            base = (match["name"] or match["name2"]).removesuffix("_total")
            families[base + ("_total" if kind == "counter" else "")] = kind
        for table in _POOL_TABLE.finditer(source):
            kind = "counter" if table["kind"] == "COUNTERS" else "gauge"
            for base in re.findall(r"\(\s*\"(proxy_[a-z_]+)\"", table["body"]):
                families[base + ("_total" if kind == "counter" else "")] = kind
    return families


def test_the_code_declares_the_families_we_look_for() -> None:
    families = code_families()
    assert len(families) >= 35
    assert families["db_client_operations_total"] == "counter"
    assert families["proxy_pool_acquires_total"] == "counter"
    assert families["db_client_function_duration_seconds"] == "histogram"


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_metrics_named_exist(page: Path) -> None:
    families = code_families()
    for match in _DOC_METRIC.finditer(text(page)):
        metric = match["name"]
        if metric.endswith(("_bucket", "_sum", "_count")):
            metric = re.sub(r"_(bucket|sum|count)$", "", metric)
        assert metric in families, (
            f"{name(page)} names metric {metric}, which the code does not export"
            + (f" (did you mean {metric}_total?)" if metric + "_total" in families else "")
        )


def test_metrics_page_lists_every_family() -> None:
    listed = {match["name"] for match in _DOC_METRIC.finditer(text(DOCS / "metrics.md"))}
    missing = sorted(set(code_families()) - listed)
    assert not missing, f"docs/metrics.md lacks {missing}"


# -- command line ---------------------------------------------------------------------------------


def _options_of(command: Any) -> set[str]:
    """A command's options; a group's (``dbsight dashboard export``) with its subcommands'."""
    found = {
        opt for param in command.params
        for opt in (*param.opts, *getattr(param, "secondary_opts", ()))  # --no-... too
        if opt.startswith("-")
    }  # fmt: skip
    for sub in getattr(command, "commands", {}).values():
        found |= _options_of(sub)
    return found | {"--help"}


@cache
def dbsight_options() -> dict[str, set[str]]:
    group = typer.main.get_command(cli.app)
    return {
        command_name: _options_of(command)
        for command_name, command in group.commands.items()  # type: ignore[attr-defined]
    }


@cache
def bench_options(bench: str) -> set[str]:
    source = (ROOT / "bench" / f"{bench}.py").read_text(encoding="utf-8")
    return set(re.findall(r"add_argument\(\s*\"(--[a-z-]+)\"", source)) | {"--help"}


def command_lines(page: str) -> list[str]:
    """Every line, with backslash continuations joined."""
    return page.replace("\\\n", " ").splitlines()


def invocations(line: str) -> list[tuple[str, list[str]]]:
    """``(what, words)`` for each dbsight or ./dev bench invocation on a line."""
    found = []
    for match in re.finditer(r"(?:\./dev (?:dbsight )?|\bdbsight )([a-z]+)([^`|;#]*)", line):
        command, rest = match[1], match[2]
        try:
            words = shlex.split(rest)
        except ValueError:
            words = rest.split()
        if match[0].startswith("./dev bench") or command == "bench":
            if words and re.fullmatch(r"[a-z]+", words[0]):
                found.append((f"bench {words[0]}", words[1:]))
        elif command in dbsight_options():
            found.append((command, words))
    return found


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_command_line_options_named_exist(page: Path) -> None:
    for line in command_lines(text(page)):
        for what, words in invocations(line):
            flags = {w.split("=")[0] for w in words if re.fullmatch(r"--[a-z][a-z-]*(=.*)?", w)}
            if what.startswith("bench "):
                known = bench_options(what.removeprefix("bench "))
            else:
                known = dbsight_options()[what]
            unknown = sorted(flags - known)
            assert not unknown, f"{name(page)}: `{what}` has no option {unknown}: {line.strip()}"


def test_options_in_prose_exist() -> None:
    """A flag written alone (`--pool-mode transaction`) belongs to some command."""
    everything = set().union(*dbsight_options().values())
    everything |= set().union(*(bench_options(p.stem) for p in (ROOT / "bench").glob("*.py")))
    for page in PAGES:
        for flag in re.findall(r"`(--[a-z][a-z-]*)[ =`]", text(page)):
            assert flag in everything, f"{name(page)} names option {flag}, which no command has"


# -- code blocks ----------------------------------------------------------------------------------


def code_blocks(language: str) -> list[tuple[Path, str]]:
    fence = re.compile(rf"^```{language}\n(.*?)^```", re.S | re.M)
    return [(page, block) for page in PAGES for block in fence.findall(text(page))]


def test_toml_blocks_are_valid_proxy_configurations(tmp_path: Path) -> None:
    blocks = code_blocks("toml")
    assert blocks
    for page, block in blocks:
        path = tmp_path / "dbsight.toml"
        path.write_text(block)
        tomllib.loads(block)
        ProxyConfig.load(path)  # raises ConfigError naming the key


def test_python_blocks_compile() -> None:
    blocks = code_blocks("python")
    assert blocks
    for page, block in blocks:
        if block.startswith(">>>"):
            block = "\n".join(line[4:] for line in block.splitlines() if line.startswith(">>> "))
        compile(block, name(page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_json_blocks_parse() -> None:
    for page, block in code_blocks("json"):
        for line in block.splitlines():
            json.loads(line)


def test_shell_blocks_parse() -> None:
    for page, block in code_blocks("bash"):
        result = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert result.returncode == 0, f"{name(page)}: {result.stderr}\n{block}"


# -- links and the front page ---------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return anchor.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    lines, in_code = [], False
    for line in text(page).splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            lines.append(line.lstrip("#"))
    return {slug(heading) for heading in lines}


@pytest.mark.parametrize("page", PAGES, ids=name)
def test_relative_links_resolve(page: Path) -> None:
    for target in re.findall(r"\]\(([^)\s]+)\)", text(page)):
        if re.match(r"[a-z]+:", target):
            continue  # an absolute URL
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        assert linked.exists(), f"{name(page)} links to missing {target}"
        if anchor:
            assert anchor in anchors(linked), f"{name(page)} links to missing anchor {target}"


def test_every_page_is_in_the_index_and_the_readme() -> None:
    index, readme = text(DOCS / "README.md"), text(README)
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"
            assert f"](docs/{page.name})" in readme, f"README.md does not link {page.name}"


def test_the_two_commands_are_on_the_first_screen() -> None:
    first_screen = "\n".join(text(README).splitlines()[:30])
    assert "./dev demo" in first_screen
    assert "./dev test" in first_screen
