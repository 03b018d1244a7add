"""The service image without a Docker engine: the Dockerfile's stages, user, healthcheck and
command, every file it copies present and not hidden by .dockerignore; the image's
entrypoint (secrets from files) and healthcheck script run for real; gunicorn.conf.py loads
and sizes the workers from the CPUs."""

from __future__ import annotations

import fnmatch
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def _instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


@pytest.fixture(scope="module")
def instructions() -> list[tuple[str, str]]:
    return _instructions(DOCKERFILE.read_text())


def _stages(instructions: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in instructions:
        if keyword == "FROM":
            name = rest.split(" AS ")[-1].strip() if " AS " in rest else rest
            current = stages.setdefault(name, [])
        current.append((keyword, rest))
    return stages


def test_multi_stage_builder_then_slim_runtime(instructions: list) -> None:
    stages = _stages(instructions)
    assert list(stages) == ["builder", "runtime"]
    assert all("slim" in rest for keyword, rest in instructions if keyword == "FROM")
    runtime = stages["runtime"]
    assert any(k == "COPY" and r.startswith("--from=builder /wheels") for k, r in runtime)
    # the runtime installs only the wheels built before, from no index
    installs = [r for k, r in runtime if k == "RUN" and "pip install" in r]
    assert installs and all("--no-index" in r for r in installs)


def test_runs_as_a_non_root_user(instructions: list) -> None:
    runtime = _stages(instructions)["runtime"]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "no USER in the runtime stage"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000  # numeric: runAsNonRoot can verify it
    assert "useradd --system --uid " + uid in " ".join(r for k, r in runtime if k == "RUN")


def test_healthcheck_and_command(instructions: list) -> None:
    healthchecks = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert '"python", "/usr/local/bin/dbsight-healthcheck"' in healthchecks[0]
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "HEALTHCHECK_URL=http://127.0.0.1:8000/healthz" in env
    assert "DBSIGHT_MULTIPROCESS_DIR=/run/dbsight/metrics" in env
    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert cmd == '["gunicorn", "--config", "/etc/dbsight/gunicorn.conf.py"]'
    copies = {rest.split()[-1]: rest.split()[0] for keyword, rest in instructions
              if keyword == "COPY" and len(rest.split()) == 2}  # fmt: skip
    assert copies["/etc/dbsight/gunicorn.conf.py"] == "deploy/gunicorn.conf.py"
    assert copies["/usr/local/bin/dbsight-healthcheck"] == "deploy/docker/healthcheck.py"
    exposed = {p for keyword, rest in instructions if keyword == "EXPOSE" for p in rest.split()}
    assert exposed == {"8000", "9187"}


def test_app_module_default_is_the_demo_and_matches_gunicorn(instructions: list) -> None:
    args = dict(rest.split("=", 1) for keyword, rest in instructions
                if keyword == "ARG" and "=" in rest)  # fmt: skip
    config = runpy.run_path(str(ROOT / "deploy/gunicorn.conf.py"))
    assert args["APP_MODULE"].strip('"') == config["DEFAULT_APP_MODULE"]
    assert config["DEFAULT_APP_MODULE"] == "dbsight.demo.app:app_from_env()"


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (its patterns match the
    path or one of its parent folders; ! exceptions are not used in this file)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        assert not pattern.startswith("!"), "exceptions are not handled here"
        for prefix in prefixes:
            bare = pattern.replace("**/", "")  # **/x also matches x at the top
            if fnmatch.fnmatch(prefix, pattern) or fnmatch.fnmatch(prefix, bare):
                return True
    return False


def test_every_copied_file_exists_and_is_in_the_build_context(instructions: list) -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]  # fmt: skip
    sources = []
    for keyword, rest in instructions:
        if keyword == "COPY" and not rest.startswith("--from"):
            sources += rest.split()[:-1]
    assert {"pyproject.toml", "README.md", "src", "deploy/gunicorn.conf.py"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source, patterns), f"{source} is excluded by .dockerignore"
    # what must stay out of an image: the venv, git, tests, the secrets
    for path in (".venv", ".git", "tests", "deploy/secrets/admin_token.txt"):
        assert _ignored(path, patterns), path


def test_pyproject_has_the_extras_the_image_installs(instructions: list) -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    args = dict(rest.split("=", 1) for keyword, rest in instructions
                if keyword == "ARG" and "=" in rest)  # fmt: skip
    for extra in [*args["EXTRAS"].split(","), "deploy"]:
        assert extra in extras, extra
    assert any(dep.startswith("uvicorn-worker") for dep in extras["deploy"])


# -- the entrypoint: secrets from files --------------------------------------------------------


def _entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(ROOT / "deploy/docker/entrypoint.sh"), *command],
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def test_entrypoint_reads_secret_files_into_variables(tmp_path: Path) -> None:
    token = tmp_path / "admin_token"
    token.write_text("s3cret-token\n")
    password = tmp_path / "pw"
    password.write_text("pa ss")
    done = _entrypoint(
        {"ADMIN_TOKEN_FILE": str(token), "POSTGRES_PASSWORD_FILE": str(password)},
        "sh", "-c", 'printf "%s|%s|%s" "$DBSIGHT_ADMIN_TOKEN" "$POSTGRES_PASSWORD" '
                    '"${ADMIN_TOKEN_FILE:-gone}"',
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the trailing newline of the file is not part of the secret
    assert done.stdout == "s3cret-token|pa ss|gone"


def test_entrypoint_refuses_an_unreadable_secret_file(tmp_path: Path) -> None:
    done = _entrypoint({"ADMIN_TOKEN_FILE": str(tmp_path / "nope")}, "true")
    assert done.returncode == 2
    assert "ADMIN_TOKEN_FILE" in done.stderr


def test_entrypoint_runs_the_command_unchanged_without_secrets() -> None:
    done = _entrypoint({}, "sh", "-c", "echo $# $1", "x", "a b")
    assert (done.returncode, done.stdout) == (0, "1 a b\n")


# -- the healthcheck script -----------------------------------------------------------------------


def _healthcheck(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "deploy/docker/healthcheck.py")],
                          env={**os.environ, "HEALTHCHECK_URL": url},
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_healthcheck_passes_on_200_and_fails_otherwise(httpserver: Any) -> None:
    httpserver.expect_request("/healthz").respond_with_data("ok")
    httpserver.expect_request("/sick").respond_with_data("no", status=503)
    assert _healthcheck(httpserver.url_for("/healthz")).returncode == 0
    sick = _healthcheck(httpserver.url_for("/sick"))
    assert sick.returncode == 1 and "503" in sick.stderr


def test_healthcheck_fails_when_nothing_listens() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        done = _healthcheck(f"http://127.0.0.1:{port}/healthz")
    assert done.returncode == 1 and "unhealthy" in done.stderr


# -- gunicorn.conf.py ----------------------------------------------------------------------------


def _config(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict[str, Any]:
    for name in ("APP_MODULE", "WEB_CONCURRENCY", "PORT", "HOST", "DBSIGHT_MULTIPROCESS_DIR",
                 "PROMETHEUS_MULTIPROC_DIR"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "deploy/gunicorn.conf.py"))


def test_gunicorn_config_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(monkeypatch)
    assert config["wsgi_app"] == "dbsight.demo.app:app_from_env()"
    assert config["worker_class"] == "uvicorn_worker.UvicornWorker"
    assert config["bind"] == ["0.0.0.0:8000"]
    assert config["workers"] == 2 * config["available_cpus"]() + 1
    assert config["graceful_timeout"] == 30 and config["timeout"] == 60
    assert config["control_socket_disable"] is True


def test_gunicorn_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(monkeypatch, APP_MODULE="dbsight_platform.main:app", WEB_CONCURRENCY="5",
                     PORT="9000", HOST="127.0.0.1")  # fmt: skip
    assert config["wsgi_app"] == "dbsight_platform.main:app"
    assert config["workers"] == 5
    assert config["bind"] == ["127.0.0.1:9000"]
    with pytest.raises(SystemExit, match="WEB_CONCURRENCY='many' is not a whole number"):
        _config(monkeypatch, WEB_CONCURRENCY="many")
    with pytest.raises(SystemExit, match="PORT=0 must be at least 1"):
        _config(monkeypatch, PORT="0")


def test_workers_follow_the_container_cpu_limit(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    config = _config(monkeypatch)
    cgroup_cpus = config["_cgroup_cpus"]
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n")
    assert cgroup_cpus(limit) == 1.5
    limit.write_text("max 100000\n")
    assert cgroup_cpus(limit) is None
    assert cgroup_cpus(tmp_path / "absent") is None


def test_multiprocess_dir_is_emptied_not_removed(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    config = _config(monkeypatch, PROMETHEUS_MULTIPROC_DIR=str(shared))
    assert config["multiprocess_dir"]() == shared
    config = _config(monkeypatch, DBSIGHT_MULTIPROCESS_DIR=str(shared),
                     PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "other"))  # fmt: skip
    assert config["multiprocess_dir"]() == shared  # dbsight's own setting first
    config["empty_directory"](shared)
    (shared / "worker-1-2.metrics.json").write_text("{}")
    (shared / "sub").mkdir()
    (shared / "sub" / "x").write_text("")
    config["empty_directory"](shared)
    assert shared.is_dir() and list(shared.iterdir()) == []


def test_gunicorn_check_config_loads_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "DBSIGHT_DEMO_DSN": "postgresql://app@127.0.0.1:1/shop",
           "HOST": "127.0.0.1"}  # fmt: skip
    env.pop("APP_MODULE", None)
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "--config",
                           str(ROOT / "deploy/gunicorn.conf.py")], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    # and a module that does not exist is reported, not silently served
    env["APP_MODULE"] = "no_such_module_here:app"
    done = subprocess.run([sys.executable, "-m", "gunicorn", "--check-config", "--config",
                           str(ROOT / "deploy/gunicorn.conf.py")], env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "no_such_module_here" in done.stdout + done.stderr
