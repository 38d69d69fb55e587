"""One CloudWatch dashboard: how the runs went, and how each store is doing (docs/operations.md).

The operator should be able to *look* instead of reading logs: runs succeeded and failed, stores
failed, held back by the snapshot guard and stale per run, run duration, how long the DuckDB write
lock was held, and per store the rows published, the duration, the failures and the snapshot age
against the stale threshold; then the states of the stack's alarms.

The template does not know the store ids (they are in stores.toml on EFS), so the per-store
graphs are CloudWatch ``SEARCH`` expressions over the ``{Fluxion/ETL,Environment,Store}`` schema:
every store that reported a datapoint gets its own line, and a store added to stores.toml shows
up without a deploy. Every metric named here goes through :mod:`fluxion_cfn.metric_names`.

The body is JSON inside ``Fn::Sub``: the region, the environment, the schedule period (the graphs'
period: the ETL reports once per run) and the alarms' names are filled in by CloudFormation.
"""

import json
from typing import Any

from troposphere import Sub, Template
from troposphere.cloudwatch import Alarm, Dashboard

from fluxion_cfn.alerting import Alerting
from fluxion_cfn.metric_names import (
    ENVIRONMENT_DIMENSION,
    NAMESPACE,
    STORE_DIMENSION,
    run_metric,
    store_metric,
)
from fluxion_cfn.parameters import Parameters

#: Grid of a dashboard: 24 columns.
_WIDTH = 24
#: Placeholder for a number parameter, which ``json.dumps`` would quote: swapped for
#: ``${Parameter}`` once the JSON is written.
_NUMBER = "@{}@"


def _number(parameter_title: str) -> str:
    return _NUMBER.format(parameter_title)


class _Body:
    """Widgets laid out left to right, row by row."""

    def __init__(self, params: Parameters) -> None:
        self.params = params
        self.widgets: list[dict[str, Any]] = []
        self._x = self._y = self._row_height = 0

    def _place(self, widget: dict[str, Any], width: int, height: int) -> None:
        if self._x + width > _WIDTH:
            self._x, self._y = 0, self._y + self._row_height
            self._row_height = 0
        widget.update(x=self._x, y=self._y, width=width, height=height)
        self._x += width
        self._row_height = max(self._row_height, height)
        self.widgets.append(widget)

    def _graph(self, title: str, metrics: list[list[Any]], **extra: Any) -> dict[str, Any]:
        return {
            "type": "metric",
            "properties": {
                "title": title,
                "region": "${AWS::Region}",
                "view": "timeSeries",
                "period": _number(self.params.schedule_period.title),
                "metrics": metrics,
                **extra,
            },
        }

    def text(self, markdown: str, width: int = _WIDTH, height: int = 2) -> None:
        self._place({"type": "text", "properties": {"markdown": markdown}}, width, height)

    def run_graph(
        self, title: str, names: list[tuple[str, str]], width: int = 6, height: int = 6
    ) -> None:
        """A graph of run metrics ``(name, statistic)`` of this environment."""
        metrics = [
            [NAMESPACE, run_metric(name), ENVIRONMENT_DIMENSION, self._environment,
             {"stat": stat, "label": name}]
            for name, stat in names
        ]  # fmt: skip
        self._place(self._graph(title, metrics), width, height)

    def store_graph(
        self, title: str, name: str, stat: str, width: int = 12, height: int = 6, **extra: Any
    ) -> None:
        """One line per store: a SEARCH over the store schema for this environment."""
        search = (
            f"SEARCH('{{{NAMESPACE},{ENVIRONMENT_DIMENSION},{STORE_DIMENSION}}}"
            f' MetricName="{store_metric(name)}" {ENVIRONMENT_DIMENSION}="{self._environment}"\','
            f" '{stat}', {_number(self.params.schedule_period.title)})"
        )
        # ${!...} is Fn::Sub's escape for a literal ${...}: CloudWatch's dynamic label.
        label = f"${{!PROP('Dim.{STORE_DIMENSION}')}}"
        metrics = [[{"expression": search, "id": name[0].lower() + name[1:], "label": label}]]
        self._place(self._graph(title, metrics, **extra), width, height)

    def alarms(self, alarms: tuple[Alarm, ...], height: int = 3) -> None:
        # An alarm's Ref is its name; its ARN is built from it rather than taken from GetAtt,
        # which moto (the tests' CloudFormation) cannot resolve for the alarms it does not create.
        prefix = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
        arns = [f"{prefix}${{{alarm.title}}}" for alarm in alarms]
        widget = {"type": "alarm", "properties": {"title": "Alarms", "alarms": arns}}
        self._place(widget, _WIDTH, height)

    @property
    def _environment(self) -> str:
        return f"${{{self.params.environment.title}}}"

    def render(self) -> str:
        text = json.dumps({"widgets": self.widgets}, separators=(",", ":"), sort_keys=True)
        # A number placeholder inside a longer string (the SEARCH period) has no quotes of its
        # own; one that is a whole JSON value loses its quotes and becomes a number.
        for parameter in (self.params.schedule_period, self.params.stale_after):
            placeholder, value = _number(parameter.title), f"${{{parameter.title}}}"
            text = text.replace(f'"{placeholder}"', value).replace(placeholder, value)
        return text


def dashboard_body(params: Parameters, alerting: Alerting) -> str:
    """The dashboard's JSON, with ``${...}`` for ``Fn::Sub`` to fill in."""
    body = _Body(params)
    stale_after = params.stale_after.title
    body.text(
        f"## fluxion ETL, environment ${{{params.environment.title}}}\n"
        "One datapoint per run, graphed per schedule period. Per store: every store that"
        " reported. A store is stale when its published snapshot is older than"
        f" ${{{stale_after}}} s (the red line); `fluxion-etl status` shows the same ages."
    )
    body.run_graph("Runs", [("RunSucceeded", "Sum"), ("RunFailed", "Sum")])
    body.run_graph("Stores failed, held back and stale per run",
                   [("StoresFailed", "Maximum"), ("StoresHeldBack", "Maximum"),
                    ("StoresStale", "Maximum")])  # fmt: skip
    body.run_graph("Rows published per run", [("RowsPublished", "Maximum")])
    body.run_graph("Run duration and DuckDB write lock held (s)",
                   [("DurationSeconds", "Maximum"), ("LockHeldSeconds", "Maximum")])  # fmt: skip
    body.store_graph("Rows published per store", "StoreRowsPublished", "Maximum")
    body.store_graph("Duration per store (s)", "StoreDurationSeconds", "Maximum")
    body.store_graph(
        "Snapshot age per store (s)",
        "StoreSnapshotAgeSeconds",
        "Maximum",
        annotations={
            "horizontal": [{"label": "stale", "value": _number(stale_after), "color": "#d62728"}]
        },
    )
    body.store_graph("Failed runs per store", "StoreFailed", "Sum")
    body.alarms(alerting.alarms)
    return body.render()


def add_dashboard(template: Template, params: Parameters, alerting: Alerting) -> Dashboard:
    return template.add_resource(
        Dashboard(
            "Dashboard",
            DashboardName=Sub("${AWS::StackName}-etl"),
            DashboardBody=Sub(dashboard_body(params, alerting)),
        )
    )
