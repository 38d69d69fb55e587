"""The dashboard, and the rule that the stack only refers to metrics the ETL emits.

The body is JSON inside ``Fn::Sub``: it is checked the way CloudWatch would receive it, with the
variables filled in (each must name a parameter, a pseudo parameter or a resource).
"""

import json
from typing import Any

import pytest

from fluxion_cfn.metric_names import run_metric, store_metric
from fluxion_cfn.stack import render
from fluxion_etl.metrics import RUN_METRICS, STORE_METRICS
from stack_metrics import alarm_metrics, dashboard_body, dashboard_metrics, stack_metrics

TEMPLATE: dict[str, Any] = json.loads(render("json"))
BODY = dashboard_body(TEMPLATE)
WIDGETS: list[dict[str, Any]] = BODY["widgets"]


def metric_widgets() -> dict[str, dict[str, Any]]:
    return {w["properties"]["title"]: w["properties"] for w in WIDGETS if w["type"] == "metric"}


def test_the_stack_only_refers_to_metrics_the_etl_emits_with_their_dimensions() -> None:
    emitted = {(name, ("Environment",)) for name in RUN_METRICS} | {
        (name, ("Environment", "Store")) for name in STORE_METRICS
    }
    referred = stack_metrics(TEMPLATE)
    assert referred <= emitted, referred - emitted
    # Both kinds are referred to, so the check above is not vacuous.
    assert {"StoresStale", "RunSucceeded"} <= {name for name, _ in alarm_metrics(TEMPLATE)}
    assert {name for name, _ in dashboard_metrics(BODY)} == set(RUN_METRICS) | set(STORE_METRICS)


def test_a_metric_name_the_etl_does_not_emit_fails_the_build() -> None:
    with pytest.raises(ValueError, match="not a run metric"):
        run_metric("TaskStoppedReason")
    with pytest.raises(ValueError, match="not a store metric"):
        store_metric("RunSucceeded")  # a run metric drawn per store would be an empty graph


def test_the_body_is_valid_json_with_every_widget_the_operator_asked_for() -> None:
    graphs = metric_widgets()
    drawn = {
        title: {name for name, _ in dashboard_metrics({"widgets": [{"properties": p}]})}
        for title, p in graphs.items()
    }
    assert drawn == {
        "Runs": {"RunSucceeded", "RunFailed"},
        "Stores failed, held back and stale per run": {
            "StoresFailed",
            "StoresHeldBack",
            "StoresStale",
        },
        "Rows published per run": {"RowsPublished"},
        "Run duration and DuckDB write lock held (s)": {"DurationSeconds", "LockHeldSeconds"},
        "Rows published per store": {"StoreRowsPublished"},
        "Duration per store (s)": {"StoreDurationSeconds"},
        "Snapshot age per store (s)": {"StoreSnapshotAgeSeconds"},
        "Failed runs per store": {"StoreFailed"},
    }
    for properties in graphs.values():
        assert (properties["region"], properties["period"]) == ("us-east-1", 21600)
    (alarms,) = [w["properties"] for w in WIDGETS if w["type"] == "alarm"]
    every_alarm = [n for n, r in TEMPLATE["Resources"].items() if r["Type"].endswith("::Alarm")]
    assert len(alarms["alarms"]) == len(every_alarm) == 4
    assert sorted(alarms["alarms"]) == sorted(
        f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}" for name in every_alarm
    )


def test_per_store_graphs_search_every_store_of_this_environment() -> None:
    properties = metric_widgets()["Snapshot age per store (s)"]
    ((query,),) = properties["metrics"]
    assert query["expression"] == (
        'SEARCH(\'{Fluxion/ETL,Environment,Store} MetricName="StoreSnapshotAgeSeconds"'
        " Environment=\"production\"', 'Maximum', 21600)"
    )
    assert query["label"] == "${PROP('Dim.Store')}"  # each line named after its store
    (line,) = properties["annotations"]["horizontal"]
    assert (line["label"], line["value"]) == ("stale", 43200)  # EtlStaleAfterSeconds


def test_widgets_fit_the_grid_without_overlapping() -> None:
    cells: set[tuple[int, int]] = set()
    for widget in WIDGETS:
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not area & cells, widget
        cells |= area


def test_the_dashboard_is_named_after_the_stack() -> None:
    (name,) = [
        r["Properties"]["DashboardName"]
        for r in TEMPLATE["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    assert name == {"Fn::Sub": "${AWS::StackName}-etl"}
