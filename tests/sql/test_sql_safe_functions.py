"""The generated PostgreSQL allow-lists and the curated ones for other dialects."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

from dbsight.sql import _safe_functions
from dbsight.sql._generic_functions import SAFE_FUNC_CLASSES, SAFE_FUNCTION_NAMES
from dbsight.sql._safe_functions import PG_SAFE_FUNCTIONS, PG_SAFE_OPERATORS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name",
    """lower upper now count sum avg min max md5 generate_series unnest
    array_agg string_agg json_build_object jsonb_agg to_char date_trunc extract btrim substring
    position timezone length replace regexp_replace abs round random clock_timestamp
    gen_random_uuid timeofday current_setting pg_backend_pid version row_number rank lag
    pg_typeof any_value""".split(),
)
def test_known_safe_functions(name):
    assert name in PG_SAFE_FUNCTIONS


@pytest.mark.parametrize(
    "name",
    """nextval setval currval lastval pg_advisory_lock pg_advisory_xact_lock
    pg_try_advisory_lock pg_advisory_unlock set_config pg_notify txid_current
    txid_current_if_assigned pg_current_xact_id pg_current_xact_id_if_assigned pg_sleep
    pg_terminate_backend pg_cancel_backend pg_reload_conf pg_switch_wal pg_stat_reset
    pg_stat_reset_shared lo_import lo_export lo_unlink lo_get dblink dblink_exec
    query_to_xml ts_stat pg_read_file pg_ls_dir pg_is_in_recovery pg_export_snapshot
    pg_create_restore_point pg_promote pg_walfile_name pg_current_wal_lsn
    pg_get_replication_slots pg_logical_emit_message""".split(),
)
def test_unsafe_functions_are_excluded(name):
    assert name not in PG_SAFE_FUNCTIONS


def test_operators():
    for op in ("=", "<>", "<", ">=", "+", "||", "~~", "~~*", "->", "->>", "@>", "?", "?|", "&&"):
        assert op in PG_SAFE_OPERATORS
    assert "###" not in PG_SAFE_OPERATORS


def test_generated_module_is_sorted_literal():
    tree = ast.parse(Path(_safe_functions.__file__).read_text())
    sets = [
        node.value.args[0]
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.value, ast.Call)
    ]
    assert len(sets) == 2
    for literal in sets:
        assert isinstance(literal, ast.Set)
        names = [elt.value for elt in literal.elts]
        assert names == sorted(names) and len(names) == len(set(names))


def test_generator_deny_rules():
    spec = importlib.util.spec_from_file_location(
        "gen_safe_functions", ROOT / "scripts" / "gen_safe_functions.py"
    )
    gen = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(gen)
    for name in ("txid_current", "pg_advisory_lock", "lo_get", "dblink", "pg_stat_reset_shared",
                 "pg_current_xact_id", "nextval", "set_config", "pg_walfile_name"):
        assert gen.denied(name), name
    for name in ("lower", "now", "count", "pg_typeof", "jsonb_build_object"):
        assert not gen.denied(name), name
    text = gen.render("15.0", ["a", "b"], ["="])
    namespace: dict = {}
    exec(compile(text, "<generated>", "exec"), namespace)
    assert namespace["PG_SAFE_FUNCTIONS"] == {"a", "b"}


@pytest.mark.parametrize("name", ["get_lock", "release_lock", "sleep", "benchmark",
                                  "last_insert_id", "found_rows", "row_count", "load_file",
                                  "nextval", "setval", "lastval", "changes", "total_changes",
                                  "last_insert_rowid", "load_extension", "connection_id"])
def test_curated_lists_exclude_unsafe(name):
    assert name not in SAFE_FUNCTION_NAMES
    assert name.replace("_", "").lower() not in {c.lower() for c in SAFE_FUNC_CLASSES}
