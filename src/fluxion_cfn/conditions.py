"""The stack's conditions, declared in one place: what is optional and what it depends on."""

from dataclasses import dataclass

from troposphere import Equals, Not, Ref, Template

from fluxion_cfn.parameters import Parameters


@dataclass(frozen=True)
class Conditions:
    """Condition names, for ``Condition=`` on resources and ``If`` in properties."""

    create_secret: str
    has_alert_email: str
    has_store_filter: str
    schedule_enabled: str


def add_conditions(template: Template, params: Parameters) -> Conditions:
    return Conditions(
        # No existing secret given: the stack creates an empty one for the operator to fill.
        create_secret=template.add_condition(
            "CreateSecret", Equals(Ref(params.existing_secret_arn), "")
        ),
        has_alert_email=template.add_condition(
            "HasAlertEmail", Not(Equals(Ref(params.alert_email), ""))
        ),
        # ETL_TIENDAS is only set when a filter is given, so "unset" keeps meaning "all active".
        has_store_filter=template.add_condition(
            "HasStoreFilter", Not(Equals(Ref(params.stores), ""))
        ),
        # A disabled schedule never succeeds; its no-success alarm must not page anyone.
        schedule_enabled=template.add_condition(
            "ScheduleEnabled", Equals(Ref(params.schedule_state), "ENABLED")
        ),
    )
