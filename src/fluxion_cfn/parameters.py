"""Every parameter of the stack, declared in one place with its default and description.

Defaults are the deployment plan's (2 vCPU / 4 GB, every 6 hours, 7 days of logs, SQL ports 1433 and
14348 behind the 192.168.0.0/16 VPN range). The ETL settings map one-to-one onto the environment
variables of the task (docs/configuration.md), so they are declared as a table: adding a setting is
one line here and nothing else.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from troposphere import Parameter, Template

from fluxion_etl.config import DEFAULT_STALE_AFTER_SECONDS, Settings

#: CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653,
)

#: A share from 0 to 1 as ETL_MAX_SHRINK / ETL_MAX_REJECTED read it (0, 0.5, 1, 1.0, ...).
_SHARE = r"^(0(\.[0-9]+)?|1(\.0+)?)$"
_SHARE_CONSTRAINT = "a share from 0 to 1, e.g. 0.5"

#: (environment variable, parameter name, properties) for the ETL settings the task passes through.
#: ETL_TIENDAS is not here: it is set only when non-empty (an empty value means "all active").
ETL_SETTINGS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("ETL_ENGINE", "EtlEngine", {
        "Type": "String", "Default": "arrow", "AllowedValues": ["arrow", "pyodbc"],
        "Description": "ETL_ENGINE: extraction engine, arrow (arrow-odbc bulk fetch) or pyodbc.",
    }),
    ("ETL_BATCH_SIZE", "EtlBatchSize", {
        "Type": "Number", "Default": 50000, "MinValue": 1000, "MaxValue": 1000000,
        "Description": "ETL_BATCH_SIZE: rows per fetched batch (bounds the task's memory).",
    }),
    # A String, so that empty (the default) can mean "automatic": the task passes it through
    # and the ETL reads an empty ETL_WORKERS as unset.
    ("ETL_WORKERS", "EtlWorkers", {
        "Type": "String", "Default": "", "AllowedPattern": r"^$|^([1-9]|[1-5][0-9]|6[0-4])$",
        "ConstraintDescription": "empty (automatic) or a whole number from 1 to 64",
        "Description": "ETL_WORKERS: stores extracted at once. Empty: every selected store,"
        " capped by the task's memory.",
    }),
    ("ETL_MAX_RETRIES", "EtlMaxRetries", {
        "Type": "Number", "Default": 3, "MinValue": 1, "MaxValue": 10,
        "Description": "ETL_MAX_RETRIES: attempts per store for transient errors.",
    }),
    ("ETL_TIMEOUT_SECONDS", "EtlTimeoutSeconds", {
        "Type": "Number", "Default": 1800, "MinValue": 60, "MaxValue": 86400,
        "Description": "ETL_TIMEOUT_SECONDS: whole-run deadline; the duration alarm fires when a"
        " run reaches it.",
    }),
    ("ETL_LOCK_WAIT_SECONDS", "EtlLockWaitSeconds", {
        "Type": "Number", "Default": 600, "MinValue": 0, "MaxValue": 3600,
        "Description": "ETL_LOCK_WAIT_SECONDS: how long to wait for another process to release"
        " the DuckDB file.",
    }),
    ("ETL_STALE_AFTER_SECONDS", "EtlStaleAfterSeconds", {
        "Type": "Number", "Default": DEFAULT_STALE_AFTER_SECONDS, "MinValue": 60,
        "MaxValue": 2592000,
        "Description": "ETL_STALE_AFTER_SECONDS: a store whose last published snapshot is older"
        " than this is stale (StoresStale alarm, dashboard, status); two schedule periods, so"
        " keep it at 2 x SchedulePeriodSeconds.",
    }),
    # The snapshot guard's shares (fluxion_etl.run.guard), defaults read from the ETL's own.
    # Strings, so that the value reaches the task as typed (moto's UsePreviousValue truncates a
    # Number 0.5 to 0). ETL_ACCEPT_SHRINK is deliberately no parameter: an accept is for one run
    # only (run-task --accept-shrink); a standing one would switch the guard off for every run.
    ("ETL_MAX_SHRINK", "EtlMaxShrink", {
        "Type": "String", "Default": f"{Settings.max_shrink:g}", "AllowedPattern": _SHARE,
        "ConstraintDescription": _SHARE_CONSTRAINT,
        "Description": "ETL_MAX_SHRINK: a store's new snapshot with fewer than this share of the"
        " rows it serves now is held back (the old one stays served); 0 turns the rule off.",
    }),
    ("ETL_MAX_REJECTED", "EtlMaxRejected", {
        "Type": "String", "Default": f"{Settings.max_rejected:g}", "AllowedPattern": _SHARE,
        "ConstraintDescription": _SHARE_CONSTRAINT,
        "Description": "ETL_MAX_REJECTED: a store's new snapshot with more than this share of"
        " its fetched rows rejected is held back; 1 turns the rule off.",
    }),
    ("SQL_ODBC_DRIVER", "SqlOdbcDriver", {
        "Type": "String", "Default": "ODBC Driver 18 for SQL Server", "MinLength": 1,
        "Description": "SQL_ODBC_DRIVER: ODBC driver name installed in the image.",
    }),
    ("LOG_LEVEL", "LogLevel", {
        "Type": "String", "Default": "INFO",
        "AllowedValues": ["DEBUG", "INFO", "WARNING", "ERROR"],
        "Description": "LOG_LEVEL of the ETL.",
    }),
    ("ETL_TIMEZONE", "EtlTimezone", {
        "Type": "String", "Default": "America/Caracas",
        "AllowedPattern": r"^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$",
        "Description": "ETL_TIMEZONE: IANA zone of the chain; fecha_extraccion is published in its"
        " local time, which the backend compares with its CURRENT_DATE (the ledger stays UTC).",
    }),
    ("ETL_STOCK_MINIMO", "EtlStockMinimo", {
        "Type": "Number", "Default": 10, "MinValue": 0, "MaxValue": 99999999,
        "Description": "ETL_STOCK_MINIMO: estado_stock is CRITICO at or under it, for stores"
        " without their own stock_minimo in stores.toml.",
    }),
    ("ETL_STOCK_MAXIMO", "EtlStockMaximo", {
        "Type": "Number", "Default": 100, "MinValue": 0, "MaxValue": 99999999,
        "Description": "ETL_STOCK_MAXIMO: estado_stock is EXCESO at or over it, for stores"
        " without their own stock_maximo in stores.toml.",
    }),
    ("ETL_PUNTO_REORDEN", "EtlPuntoReorden", {
        "Type": "Number", "Default": 20, "MinValue": 0, "MaxValue": 99999999,
        "Description": "ETL_PUNTO_REORDEN: estado_stock is BAJO at or under it, for stores"
        " without their own punto_reorden in stores.toml.",
    }),
    ("ETL_DUCKDB_STORAGE_VERSION", "EtlDuckdbStorageVersion", {
        "Type": "String", "Default": "v1.0.0", "AllowedPattern": r"^(v\d+\.\d+\.\d+|latest)$",
        "Description": "ETL_DUCKDB_STORAGE_VERSION: storage format of a new DuckDB file (an"
        " existing file keeps its own); the backend's DuckDB must read it (v1.0.0: any 1.x).",
    }),
)


@dataclass(frozen=True)
class Parameters:
    """The parameters, by role, for the resource groups to ``Ref``."""

    vpc: Parameter
    private_subnets: Parameter
    source_cidr: Parameter
    sql_ports: tuple[Parameter, ...]
    aws_endpoints_security_group: Parameter
    s3_prefix_list: Parameter
    cluster: Parameter
    file_system: Parameter
    access_point: Parameter
    efs_security_group: Parameter
    image_tag: Parameter
    cpu: Parameter
    memory: Parameter
    environment: Parameter
    log_retention: Parameter
    existing_secret_arn: Parameter
    stores: Parameter
    etl_settings: Mapping[str, Parameter]
    schedule_expression: Parameter
    schedule_state: Parameter
    schedule_period: Parameter
    alert_email: Parameter

    @property
    def timeout(self) -> Parameter:
        return self.etl_settings["ETL_TIMEOUT_SECONDS"]

    @property
    def stale_after(self) -> Parameter:
        return self.etl_settings["ETL_STALE_AFTER_SECONDS"]


def add_parameters(template: Template) -> Parameters:
    """Declare the parameters and their console grouping; return them by role."""

    def add(name: str, group: str, **props: Any) -> Parameter:
        parameter = template.add_parameter(Parameter(name, **props))
        template.add_parameter_to_group(parameter, group)
        return parameter

    network, shared, task, etl, schedule = (
        "Network", "Shared ECS cluster and EFS", "Task", "ETL settings", "Schedule and alerts",
    )
    params = Parameters(
        vpc=add("VpcId", network, Type="AWS::EC2::VPC::Id",
                Description="VPC of the private subnets, the cluster and the EFS file system."),
        private_subnets=add(
            "PrivateSubnetIds", network, Type="List<AWS::EC2::Subnet::Id>",
            Description="Private subnets for the task (no public IP): they need a route to the"
            " store VPN and to AWS APIs (NAT gateway or VPC endpoints)."),
        source_cidr=add(
            "SourceCidr", network, Type="String", Default="192.168.0.0/16",
            AllowedPattern=r"^(\d{1,3}\.){3}\d{1,3}/\d{1,2}$",
            ConstraintDescription="an IPv4 CIDR block such as 192.168.0.0/16",
            Description="Address range of the stores' SQL Servers, reached over the VPN."),
        sql_ports=(
            add("SqlServerPort", network, Type="Number", Default=1433, MinValue=1,
                MaxValue=65535, Description="SQL Server port of most stores."),
            add("SqlServerAltPort", network, Type="Number", Default=14348, MinValue=1,
                MaxValue=65535, Description="Second SQL Server port some stores listen on."),
        ),
        aws_endpoints_security_group=add(
            "AwsEndpointsSecurityGroupId", network, Type="String", Default="",
            AllowedPattern=r"^$|^sg-[0-9a-f]{8,17}$",
            Description="Optional, with S3PrefixListId: security group of the VPC interface"
            " endpoints for ECR (api, dkr), Secrets Manager, CloudWatch Logs and STS. Given, the"
            " task's HTTPS goes to that group and S3's prefix list only, not to 0.0.0.0/0; the"
            " stack adds a 443 ingress rule from the task's group to it."),
        s3_prefix_list=add(
            "S3PrefixListId", network, Type="String", Default="",
            AllowedPattern=r"^$|^pl-[0-9a-f]{8,17}$",
            Description="Optional, with AwsEndpointsSecurityGroupId: prefix list of the VPC's S3"
            " gateway endpoint (ECR image layers are served from S3)."),
        cluster=add(
            "ClusterName", shared, Type="String", AllowedPattern=r"^[A-Za-z0-9_-]{1,255}$",
            Description="Name of the existing ECS cluster the task runs in."),
        file_system=add(
            "FileSystemId", shared, Type="String", AllowedPattern=r"^fs-[0-9a-f]{8,40}$",
            Description="Existing EFS file system holding /data (DuckDB file, stores.toml)."),
        access_point=add(
            "AccessPointId", shared, Type="String", AllowedPattern=r"^fsap-[0-9a-f]{8,40}$",
            Description="EFS access point the task mounts at /data (it sets the POSIX user)."),
        efs_security_group=add(
            "EfsSecurityGroupId", shared, Type="AWS::EC2::SecurityGroup::Id",
            Description="Security group of the EFS mount targets; the stack adds an NFS ingress"
            " rule from the task's group to it."),
        image_tag=add(
            "ImageTag", task, Type="String", AllowedPattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
            Description="Tag of the ETL image in the stack's ECR repository. Tags are immutable:"
            " every deploy pins a new tag (for example the git commit)."),
        cpu=add("TaskCpu", task, Type="String", Default="2048",
                AllowedValues=["256", "512", "1024", "2048", "4096", "8192", "16384"],
                Description="Fargate task CPU units (1024 = 1 vCPU)."),
        memory=add("TaskMemory", task, Type="String", Default="4096",
                   AllowedPattern=r"^[1-9][0-9]{2,5}$",
                   Description="Fargate task memory in MiB; must suit TaskCpu."),
        environment=add(
            "EnvironmentName", task, Type="String", Default="production",
            AllowedPattern=r"^[a-z][a-z0-9-]{0,31}$",
            Description="ENVIRONMENT of the task, the Environment dimension of its Fluxion/ETL"
            " metrics (the alarms watch that dimension) and the Environment tag."),
        log_retention=add(
            "LogRetentionDays", task, Type="Number", Default=7,
            AllowedValues=list(LOG_RETENTION_DAYS),
            Description="Days CloudWatch keeps the task's logs."),
        existing_secret_arn=add(
            "ExistingSecretArn", task, Type="String", Default="",
            AllowedPattern=r"^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:\S+$",
            Description="Full ARN of an existing secret {\"username\", \"password\"} (encrypted"
            " with the aws/secretsmanager key). Empty: the stack creates an empty secret whose"
            " value you set after the first deploy."),
        stores=add(
            "EtlStores", etl, Type="String", Default="",
            AllowedPattern=r"^$|^[a-z0-9_]+(,[a-z0-9_]+)*$",
            Description="ETL_TIENDAS: comma list of store ids to run; empty runs every active"
            " store of stores.toml."),
        etl_settings={
            env: add(name, etl, **props) for env, name, props in ETL_SETTINGS
        },
        schedule_expression=add(
            "ScheduleExpression", schedule, Type="String", Default="rate(6 hours)",
            AllowedPattern=r"^(rate|cron)\(.+\)$",
            Description="EventBridge schedule of the run: rate(...) or cron(...), UTC."),
        schedule_state=add(
            "ScheduleState", schedule, Type="String", Default="DISABLED",
            AllowedValues=["ENABLED", "DISABLED"],
            Description="DISABLED until the secret has a value and a manual run-task succeeded;"
            " the no-success alarm only notifies while ENABLED."),
        schedule_period=add(
            "SchedulePeriodSeconds", schedule, Type="Number", Default=21600, MinValue=3600,
            MaxValue=302400,
            Description="Longest gap in seconds between two scheduled runs (21600 for"
            " rate(6 hours); for a cron schedule, its longest gap), a multiple of 60. The"
            " no-success alarm fires after two such periods without a successful run."),
        alert_email=add(
            "AlertEmail", schedule, Type="String", Default="",
            AllowedPattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
            Description="Optional e-mail address subscribed to the alert topic (confirm the"
            " subscription mail). Empty: subscribe later to the AlertTopicArn output."),
    )
    return params
