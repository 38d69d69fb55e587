"""The stack's conditions, declared in one place: what is optional and what it depends on."""

from dataclasses import dataclass

from troposphere import And, Equals, Not, Or, Ref, Template

from fluxion_cfn.parameters import Parameters


@dataclass(frozen=True)
class Conditions:
    """Condition names, for ``Condition=`` on resources and ``If`` in properties."""

    create_secret: str
    has_alert_email: str
    has_store_filter: str
    schedule_enabled: str
    #: the VPC endpoints' security group and S3's prefix list are given: no HTTPS to 0.0.0.0/0
    has_aws_endpoints: str


def add_conditions(template: Template, params: Parameters) -> Conditions:
    endpoints, s3 = params.aws_endpoints_security_group, params.s3_prefix_list
    template.add_rule(
        "AwsEndpointsTogether",
        {
            "Assertions": [
                {
                    # one without the other would cut the task off ECR's layers or its APIs
                    "Assert": Or(
                        And(Equals(Ref(endpoints), ""), Equals(Ref(s3), "")),
                        And(Not(Equals(Ref(endpoints), "")), Not(Equals(Ref(s3), ""))),
                    ),
                    "AssertDescription": "AwsEndpointsSecurityGroupId and S3PrefixListId are"
                    " set together",
                }
            ]
        },
    )
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
        # both, spelled out (a linter then knows neither is empty where it holds)
        has_aws_endpoints=template.add_condition(
            "HasAwsEndpoints", And(Not(Equals(Ref(endpoints), "")), Not(Equals(Ref(s3), "")))
        ),
    )
