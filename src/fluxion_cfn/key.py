"""The stack's KMS key: encrypts the task logs, the SQL credentials secret and the alert topic.

One customer-managed key rather than the AWS-managed ones because the alert topic must be
encrypted with a key whose policy lets EventBridge and CloudWatch alarms publish (the AWS-managed
SNS key cannot), and one key for the stack keeps a single place to audit, rotate and revoke.
"""

from awacs.aws import PolicyDocument
from troposphere import Sub, Template
from troposphere.kms import Key

from fluxion_cfn import iam
from fluxion_cfn.naming import (
    account_root,
    alarms_of_account,
    log_group_arn,
    topics_of_account,
)


def add_key(template: Template) -> Key:
    return template.add_resource(
        Key(
            "StackKey",
            # Explicit: a stack delete schedules the key for deletion after PendingWindowInDays
            # (30), the window in which it can still be cancelled.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
            Description=Sub(
                "fluxion ${AWS::StackName}: task logs, SQL credentials secret, alert topic"
            ),
            EnableKeyRotation=True,
            PendingWindowInDays=30,
            KeyPolicy=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    iam.key_administration(account_root()),
                    iam.key_use_through_iam(account_root()),
                    iam.key_use_by_logs(log_group_arn()),
                    iam.key_use_by_alarms(alarms_of_account(), topics_of_account()),
                    iam.key_use_by_events(topics_of_account()),
                ],
            ),
            # No Tags: moto, the tests' CloudFormation, rejects them on keys; the stack's own
            # tags (aws:cloudformation:*) still mark it.
        )
    )
