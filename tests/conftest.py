# Real PostgreSQL, MariaDB and Redis servers for the suite (private instances unless the
# DBSIGHT_TEST_* variables name existing ones). Users load the same plugin with
#   pytest_plugins = ["dbsight.testing.pytest_plugin"]
pytest_plugins = ["dbsight.testing.pytest_plugin"]
