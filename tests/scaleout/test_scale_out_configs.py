"""The Prometheus configurations docs/scale-out.md shows (remote write, federation) are
accepted by ``promtool check config``, with the rule file ``dbsight alerts export`` writes."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dbsight.testing.pytest_plugin import _missing_binaries

PAGE = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", PAGE.read_text(), flags=re.S)


def test_the_page_shows_both_setups() -> None:
    blocks = _yaml_blocks()
    assert any("remote_write:" in block for block in blocks)
    assert any("/federate" in block for block in blocks)


@pytest.mark.parametrize("index", range(len(_yaml_blocks())))
def test_promtool_accepts_the_configuration(index: int, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        _missing_binaries("promtool is not installed (Debian package prometheus)")
    block = _yaml_blocks()[index]
    config = tmp_path / "prometheus.yml"
    config.write_text(block)
    for rule_file in re.findall(r"^\s+- (\S+\.yml)", block, flags=re.M):
        exported = subprocess.run(
            [sys.executable, "-m", "dbsight.cli", "alerts", "export", "-o", str(tmp_path / rule_file)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
    done = subprocess.run([promtool, "check", "config", str(config)], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr
