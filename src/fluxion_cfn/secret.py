"""The SQL credentials secret: created empty, or an existing one the operator names.

No credential is ever written into the template (the deployment plan this replaces did that):
the created secret has no ``SecretString``; the operator puts ``{"username", "password"}`` into it
after the first deploy. The task receives it only through ECS secret injection.
"""

from dataclasses import dataclass

from troposphere import AWSHelperFn, GetAtt, If, Ref, Sub, Template
from troposphere.kms import Key
from troposphere.secretsmanager import Secret

from fluxion_cfn.conditions import Conditions
from fluxion_cfn.naming import tags
from fluxion_cfn.parameters import Parameters


@dataclass(frozen=True)
class Credentials:
    secret: Secret  # exists only under the CreateSecret condition
    arn: AWSHelperFn  # the created secret's ARN, or ExistingSecretArn


def add_secret(
    template: Template, params: Parameters, conditions: Conditions, key: Key
) -> Credentials:
    secret = template.add_resource(
        Secret(
            "SqlCredentials",
            Condition=conditions.create_secret,
            # Explicit: it is encrypted with the stack key, which a stack delete schedules for
            # deletion, so a retained copy would soon be unreadable; re-enter the login instead.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
            Description=Sub(
                "fluxion ${AWS::StackName}: SQL Server login of the store back offices, as JSON"
                ' {"username": ..., "password": ...}. Set its value after the first deploy.'
            ),
            KmsKeyId=GetAtt(key, "Arn"),
            Tags=tags(params),
        )
    )
    arn = If(conditions.create_secret, Ref(secret), Ref(params.existing_secret_arn))
    return Credentials(secret=secret, arn=arn)
