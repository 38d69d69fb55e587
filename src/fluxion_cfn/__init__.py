"""fluxion_cfn: the CloudFormation stack that runs fluxion_etl as a scheduled ECS Fargate task."""
