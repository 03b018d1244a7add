# Real PostgreSQL, MariaDB and Redis servers for the suite (private instances unless the
# DBSIGHT_TEST_* variables name existing ones). Users load the same plugin with
#   pytest_plugins = ["dbsight.testing.pytest_plugin"]
pytest_plugins = ["dbsight.testing.pytest_plugin"]

import pytest


@pytest.fixture
def fresh_runtime():
    """Let a test call ``dbsight.configure()`` on an unconfigured dbsight (statistics survive a
    configure(), so what earlier tests recorded would show); afterwards it is unconfigured again."""
    from dbsight import _runtime

    _runtime.reset()
    yield _runtime
    _runtime.reset()


@pytest.fixture
def advice_events():
    """The advice events (dbsight.advise.subscribe) emitted while the test runs, in order."""
    from dbsight.advise import subscribe, unsubscribe

    seen = []
    subscribe(seen.append)
    yield seen
    unsubscribe(seen.append)
