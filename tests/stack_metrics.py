"""Which ETL metrics the stack refers to (alarms and dashboard), and which a run really emitted.

Shared by the unit tests (the references against :mod:`fluxion_etl.metrics`) and the integration
test that compares them with the EMF documents of a real run. A metric is ``(name, dimensions)``:
CloudWatch treats the same name with other dimensions as another metric, an empty graph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

NAMESPACE = "Fluxion/ETL"
Metric = tuple[str, tuple[str, ...]]

#: Values for the ``${...}`` of the dashboard's ``Fn::Sub``, as CloudFormation would fill them.
SAMPLE_VALUES = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "EnvironmentName": "production",
    "SchedulePeriodSeconds": "21600",
    "EtlStaleAfterSeconds": "43200",
}
_VARIABLE = re.compile(r"\$\{([^}!]+)\}")
_SEARCH = re.compile(r"SEARCH\('\{([^}]*)\}\s+MetricName=\"(\w+)\"")


def substitute(text: str, template: Mapping[str, Any]) -> str:
    """``text`` with its ``Fn::Sub`` variables filled in; KeyError for one that names nothing.

    ``${Name}`` must be a parameter, a pseudo parameter or a resource (whose Ref, for an alarm
    its name, is given here as its logical id); ``${!x}`` is Sub's escape for a literal ``${x}``.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in template["Resources"]:
            return name
        if name not in template["Parameters"] and not name.startswith("AWS::"):
            raise KeyError(name)
        return SAMPLE_VALUES[name]

    return _VARIABLE.sub(value, text).replace("${!", "${")


def dashboard_body(template: Mapping[str, Any]) -> dict[str, Any]:
    """The dashboard's body, as CloudWatch would receive it."""
    (dashboard,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    sub = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    return dict(json.loads(substitute(sub, template)))


def dashboard_metrics(body: Mapping[str, Any]) -> set[Metric]:
    """The Fluxion/ETL metrics the widgets draw: metric rows and SEARCH expressions."""
    found: set[Metric] = set()
    for widget in body["widgets"]:
        for row in widget["properties"].get("metrics", []):
            if isinstance(row[0], dict):  # [{"expression": "SEARCH(...)", ...}]
                for match in _SEARCH.finditer(row[0]["expression"]):
                    namespace, *dimensions = match.group(1).split(",")
                    if namespace == NAMESPACE:
                        found.add((match.group(2), tuple(dimensions)))
                continue
            cells = [c for c in row if not isinstance(c, dict)]  # [ns, name, dim, value, ...]
            assert "." not in cells, "the shorthand '.' is not used (nor read here)"
            if cells[0] == NAMESPACE:
                found.add((cells[1], tuple(cells[2::2])))
    return found


def alarm_metrics(template: Mapping[str, Any]) -> set[Metric]:
    return {
        (p["MetricName"], tuple(d["Name"] for d in p.get("Dimensions", [])))
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for p in [r["Properties"]]
        if p.get("Namespace") == NAMESPACE
    }


def stack_metrics(template: Mapping[str, Any]) -> set[Metric]:
    """Every Fluxion/ETL metric an alarm watches or a dashboard widget draws."""
    return alarm_metrics(template) | dashboard_metrics(dashboard_body(template))


def emitted_metrics(documents: Iterable[Mapping[str, Any]]) -> set[Metric]:
    """The metrics a run's EMF documents define, with a value present in the document."""
    return {
        (metric["Name"], tuple(dimensions))
        for document in documents
        for directive in document["_aws"]["CloudWatchMetrics"]
        if directive["Namespace"] == NAMESPACE
        for dimensions in directive["Dimensions"]
        for metric in directive["Metrics"]
        if isinstance(document.get(metric["Name"]), int | float)
    }
