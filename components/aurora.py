"""The Aurora PostgreSQL global database: the global cluster and one member cluster per region.

prod creates the global cluster and the primary cluster in it (or adopts an existing primary);
dr creates the secondary cluster, joining the global cluster prod exported, encrypted with dr's own
key. Each member has at least two instances, so a local (in-region) failover has a target.

A failover flips fields that the program must then leave alone, or the next ``pulumi up`` would
undo it (detach a promoted cluster, re-point replication, replace the global cluster):

- ``globalClusterIdentifier`` on both members: a detach-and-promote failover removes the member
  from the global cluster; a managed failover moves the primary role without changing it;
- ``replicationSourceIdentifier`` on both members: AWS sets it on whichever member is secondary
  (the provider's documented pattern for global databases), which after a failover is prod's;
- ``engineVersion`` on the members: upgrades go through the global cluster, which upgrades every
  member (again the provider's documented pattern);
- ``sourceDbClusterIdentifier`` on the global cluster: it names the primary at creation only
  (Aurora cannot read it back), and after a failover it would name the wrong cluster.

Members are named for their region, never for their role, because the role is what a failover
changes (``aipx-trading-db-us-east-1``). Clusters, instances and the global cluster are
``protect``-ed, and deletion protection is on: removing any of them is a deliberate two-step act.

Adoption (``adopt_cluster=True``, prod only): the existing cluster is imported under the same
declaration with ``import_`` and becomes the global cluster's source
(``source_db_cluster_identifier``).
Fields that describe where the cluster already lives (key, subnet group, security groups, master
user, windows) are ignored; the secure settings (encryption, deletion protection, 30-day backups,
IAM authentication, copy tags to snapshots) are not, so an import of a cluster that lacks one of
them fails with the difference named, and the cluster is fixed first: adoption never weakens it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    child_opts,
    require_provider,
)
from components.network import (
    StorePlacementArgs,
    StoreSecurityGroup,
    store_security_group,
    store_subnet_group,
)

ENGINE = "aurora-postgresql"
PORT = 5432
FAILOVER_FLIPS = ["globalClusterIdentifier", "replicationSourceIdentifier"]
"""Member-cluster fields a failover changes: never reconciled by the program."""
MEMBER_IGNORES = [*FAILOVER_FLIPS, "engineVersion"]
GLOBAL_IGNORES = ["sourceDbClusterIdentifier"]
ADOPTED_PLACEMENT = [
    "availabilityZones",
    "dbClusterParameterGroupName",
    "dbSubnetGroupName",
    "kmsKeyId",
    "masterUsername",
    "masterPasswordWo",
    "masterPasswordWoVersion",
    "databaseName",
    "port",
    "preferredBackupWindow",
    "preferredMaintenanceWindow",
    "vpcSecurityGroupIds",
    "enabledCloudwatchLogsExports",
    "performanceInsightsKmsKeyId",
]
"""What an adopted cluster keeps as it is: where and how it already lives."""
IDENTIFIER = r"^[a-z][a-z0-9-]{0,62}$"


class ClusterRole(StrEnum):
    PRIMARY = "primary"
    """Created by prod with the master user; the global cluster's source."""
    SECONDARY = "secondary"
    """Created by dr inside the global cluster; no master user (it replicates prod's)."""


class AuroraGlobalClusterArgs(ComponentArgs):
    global_cluster_identifier: str = Field(pattern=IDENTIFIER)
    engine_version: str = Field(pattern=r"^\d+\.\d+$")
    source_cluster_arn: StrInput | None = None
    """Set when adopting: the existing primary becomes the global cluster's source."""
    protect: bool = True
    tags: dict[str, str] = Field(default_factory=dict)


class AuroraGlobalCluster(pulumi.ComponentResource):
    """The global cluster (prod). Its id is what the dr stack joins and failover switches."""

    id: pulumi.Output[str]
    arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: AuroraGlobalClusterArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{PACKAGE}:database:AuroraGlobalCluster", name, None, opts)
        provider = require_provider(opts, "AuroraGlobalCluster")
        options = child_opts(self, provider, protect=args.protect, ignore_changes=GLOBAL_IGNORES)
        if args.source_cluster_arn is None:
            self.cluster = aws.rds.GlobalCluster(
                f"{name}-global",
                global_cluster_identifier=args.global_cluster_identifier,
                engine=ENGINE,
                engine_version=args.engine_version,
                storage_encrypted=True,
                deletion_protection=True,
                force_destroy=False,
                tags=args.tags,
                opts=options,
            )
        else:
            # engine and storage encryption are inherited from the source (engine conflicts with
            # it); force_destroy is required with a source cluster.
            self.cluster = aws.rds.GlobalCluster(
                f"{name}-global",
                global_cluster_identifier=args.global_cluster_identifier,
                source_db_cluster_identifier=args.source_cluster_arn,
                deletion_protection=True,
                force_destroy=True,
                tags=args.tags,
                opts=options,
            )
        self.id = self.cluster.id
        self.arn = self.cluster.arn
        self.endpoint = self.cluster.endpoint
        self.register_outputs({"id": self.id, "arn": self.arn, "endpoint": self.endpoint})


class AuroraClusterArgs(StorePlacementArgs):
    role: ClusterRole
    cluster_identifier: str = Field(pattern=IDENTIFIER)
    global_cluster_identifier: StrInput | None = None
    """The global cluster to join (required for a secondary; unset only when adopting, where the
    global cluster is created from this cluster instead)."""
    engine_version: str = Field(pattern=r"^\d+\.\d+$")
    instance_class: str = Field(pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    instances: int = Field(default=2, ge=2, le=16)
    """Two at least: the writer and a reader a local failover can promote."""
    kms_key_arn: KmsKeyArnInput
    database_name: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,62}$")
    master_username: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,62}$")
    master_password: StrInput | None = None
    """Passed write-only (``master_password_wo``): never stored in the Pulumi state."""
    master_password_version: int = Field(default=1, ge=1)
    backup_retention_days: int = Field(default=30, ge=30, le=35)
    backup_window: str = "03:00-04:00"
    maintenance_window: str = "sun:04:30-sun:05:30"
    adopt_cluster: bool = False
    """Import the existing cluster named ``cluster_identifier`` instead of creating one."""
    protect: bool = True

    @model_validator(mode="after")
    def _role_fits(self) -> Self:
        if self.role is ClusterRole.SECONDARY:
            if self.global_cluster_identifier is None:
                raise ValueError("global_cluster_identifier: a secondary joins a global cluster")
            if self.master_username or self.master_password is not None or self.database_name:
                raise ValueError(
                    "master_username: a secondary has no master user or database of its own "
                    "(it replicates the primary's)"
                )
            if self.adopt_cluster:
                raise ValueError("adopt_cluster: only the primary cluster can be adopted")
        else:
            if not self.adopt_cluster and self.global_cluster_identifier is None:
                raise ValueError(
                    "global_cluster_identifier: a new primary joins the global cluster"
                )
            if not self.adopt_cluster and (
                self.master_username is None or self.master_password is None
            ):
                raise ValueError("master_password: a new primary needs a master user and password")
        return self


class AuroraCluster(pulumi.ComponentResource):
    """One member cluster of the global database, with its instances, subnet group and SG."""

    id: pulumi.Output[str]
    arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]

    def __init__(
        self, name: str, args: AuroraClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:database:AuroraCluster", name, None, opts)
        provider = require_provider(opts, "AuroraCluster")
        self.security_group: StoreSecurityGroup = store_security_group(
            self,
            name,
            provider,
            args,
            port=PORT,
            description=f"Aurora {args.cluster_identifier}: PostgreSQL from clients",
        )
        self.subnet_group = store_subnet_group(
            aws.rds.SubnetGroup,
            self,
            name,
            provider,
            args,
            group_name=args.cluster_identifier,
            description=f"Aurora {args.cluster_identifier}",
        )
        ignored = MEMBER_IGNORES + (ADOPTED_PLACEMENT if args.adopt_cluster else [])
        self.cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=args.cluster_identifier,
            engine=ENGINE,
            engine_version=args.engine_version,
            global_cluster_identifier=args.global_cluster_identifier,
            database_name=args.database_name,
            master_username=args.master_username,
            master_password_wo=args.master_password,
            master_password_wo_version=(
                args.master_password_version if args.master_password is not None else None
            ),
            storage_encrypted=True,
            kms_key_id=args.kms_key_arn,
            deletion_protection=True,
            backup_retention_period=args.backup_retention_days,
            preferred_backup_window=args.backup_window,
            preferred_maintenance_window=args.maintenance_window,
            copy_tags_to_snapshot=True,
            iam_database_authentication_enabled=True,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{args.cluster_identifier}-final",
            db_subnet_group_name=self.subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            port=PORT,
            enabled_cloudwatch_logs_exports=["postgresql"],
            apply_immediately=False,
            tags=args.tags,
            opts=child_opts(
                self,
                provider,
                protect=args.protect,
                ignore_changes=ignored,
                import_=args.cluster_identifier if args.adopt_cluster else None,
            ),
        )
        self.instances: list[aws.rds.ClusterInstance] = []
        if not args.adopt_cluster:
            for index in range(1, args.instances + 1):
                self.instances.append(
                    aws.rds.ClusterInstance(
                        f"{name}-instance-{index}",
                        identifier=f"{args.cluster_identifier}-{index}",
                        cluster_identifier=self.cluster.id,
                        engine=aws.rds.EngineType.AURORA_POSTGRESQL,
                        engine_version=args.engine_version,
                        instance_class=args.instance_class,
                        db_subnet_group_name=self.subnet_group.name,
                        publicly_accessible=False,
                        auto_minor_version_upgrade=True,
                        performance_insights_enabled=True,
                        performance_insights_kms_key_id=args.kms_key_arn,
                        promotion_tier=index - 1,
                        copy_tags_to_snapshot=True,
                        tags=args.tags,
                        opts=child_opts(
                            self, provider, protect=args.protect, ignore_changes=["engineVersion"]
                        ),
                    )
                )
        self.id = self.cluster.id
        self.arn = self.cluster.arn
        self.endpoint = self.cluster.endpoint
        self.reader_endpoint = self.cluster.reader_endpoint
        self.register_outputs(
            {
                "id": self.id,
                "arn": self.arn,
                "endpoint": self.endpoint,
                "reader_endpoint": self.reader_endpoint,
            }
        )
