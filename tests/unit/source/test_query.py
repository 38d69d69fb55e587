"""The default query's shape and the rules for custom query files."""

from pathlib import Path

import pytest

from fluxion_etl.errors import ConfigError
from fluxion_etl.source.query import (
    STAGED_COLUMNS,
    count_query,
    default_query,
    load_query,
    with_placeholder_as,
)


def test_default_query_binds_the_warehouse_and_names_no_database() -> None:
    query = default_query()
    assert load_query(None) == query
    body = "\n".join(line.split("--")[0] for line in query.splitlines())
    assert body.count("?") == 1
    assert "VAD10" not in body and "dbo." not in body.lower()
    for column in STAGED_COLUMNS:
        assert f"AS {column}" in body


def test_custom_query_needs_exactly_one_placeholder(tmp_path: Path) -> None:
    good = tmp_path / "q.sql"
    good.write_text("SELECT 1 AS x FROM t WHERE a = ? AND b = '?' -- why?\n")
    assert load_query(good).startswith("SELECT 1")
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT 1 FROM t WHERE a = '0202'")
    with pytest.raises(ConfigError, match="exactly one '\\?' placeholder"):
        load_query(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_query(tmp_path / "missing.sql")


def test_count_query_wraps_without_comments() -> None:
    counted = count_query("-- header\nSELECT a FROM t WHERE w = ?;\n")
    assert counted == "SELECT COUNT(*) FROM (\nSELECT a FROM t WHERE w = ?\n) q"


def test_the_placeholder_becomes_an_expression_only_outside_literals_and_comments() -> None:
    query = "SELECT '?' AS q FROM t\nWHERE a = ? -- a = ?\n"
    assert with_placeholder_as(query, "(SELECT w FROM p)") == (
        "SELECT '?' AS q FROM t\nWHERE a = (SELECT w FROM p) -- a = ?\n"
    )
    assert with_placeholder_as(default_query(), "X").count("X") == 1
    with pytest.raises(ValueError, match="has 2 '.' placeholders"):
        with_placeholder_as("SELECT ? , ?", "X")
