"""The ECR repository the task's image comes from.

Tags are immutable because every deploy pins one (the ``ImageTag`` parameter): a tag then always
means the same image, so a task definition revision is reproducible. The repository outlives the
stack (``Retain``) so deleting the stack never deletes the images a rollback would need.
"""

import json

from troposphere import Sub, Template
from troposphere.ecr import (
    EncryptionConfiguration,
    ImageScanningConfiguration,
    LifecyclePolicy,
    Repository,
)

from fluxion_cfn.naming import tags
from fluxion_cfn.parameters import Parameters

#: Images kept; older ones expire (each is a few hundred MB with the ODBC driver).
KEEP_IMAGES = 10


def lifecycle_policy(keep: int = KEEP_IMAGES) -> str:
    """ECR lifecycle policy text expiring all but the ``keep`` most recent images."""
    rule = {
        "rulePriority": 1,
        "description": f"Keep the last {keep} images",
        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": keep},
        "action": {"type": "expire"},
    }
    return json.dumps({"rules": [rule]}, sort_keys=True)


def repository_name(params: Parameters) -> Sub:
    return Sub(f"fluxion-etl-${{{params.environment.title}}}")


def add_repository(template: Template, params: Parameters) -> Repository:
    return template.add_resource(
        Repository(
            "Repository",
            # Readable and lower-case (ECR's rule); one repository per environment. Retained on
            # delete, so recreating the stack needs the old repository deleted or imported first.
            RepositoryName=repository_name(params),
            DeletionPolicy="Retain",
            UpdateReplacePolicy="Retain",
            ImageScanningConfiguration=ImageScanningConfiguration(ScanOnPush=True),
            ImageTagMutability="IMMUTABLE",
            # KMS with the AWS-managed ECR key: pulls need no extra key permission.
            EncryptionConfiguration=EncryptionConfiguration(EncryptionType="KMS"),
            LifecyclePolicy=LifecyclePolicy(LifecyclePolicyText=lifecycle_policy()),
            Tags=tags(params),
        )
    )
