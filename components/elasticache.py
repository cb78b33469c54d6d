"""ElastiCache (Redis OSS): a global datastore, the primary replication group in prod and the
secondary in dr.

Each replication group: encryption at rest with the region's data-store key, TLS required in
transit, an AUTH token (passed write-only from a Secrets Manager secret replicated to both
regions, so it is never in the Pulumi state), automatic failover and Multi-AZ across at least two
nodes, daily snapshots kept ``snapshot_retention_days`` in a fixed window.

prod creates the primary group and the global datastore around it; dr creates the secondary and
joins the datastore prod exported. A secondary takes its engine, version, node type and parameter
group from the datastore (the provider refuses them), so dr sets only what is regional: its key,
subnets, security group, node count, windows and token.

A failover (``failover-global-replication-group``) makes the dr group the datastore's primary. The
program must then leave the datastore's ``primaryReplicationGroupId`` alone (changing it would
replace the datastore) and each member's ``globalReplicationGroupId`` (a member that was
disassociated to promote it must not be re-attached by the next ``pulumi up``). Both are
``ignore_changes``; the groups and the datastore are ``protect``-ed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
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

PORT = 6379
MEMBER_FLIPS = ["globalReplicationGroupId"]
DATASTORE_FLIPS = ["primaryReplicationGroupId"]
WINDOW = r"^\d{2}:\d{2}-\d{2}:\d{2}$"
WEEKLY_WINDOW = r"^[a-z]{3}:\d{2}:\d{2}-[a-z]{3}:\d{2}:\d{2}$"


class GroupRole(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


class CacheReplicationGroupArgs(StorePlacementArgs):
    role: GroupRole
    replication_group_id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,39}$")
    description: str = Field(min_length=1)
    global_datastore_id: StrInput | None = None
    """Required for a secondary: the global datastore to join (from prod's outputs)."""
    global_datastore_suffix: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9-]{0,39}$")
    """Primary only: create the global datastore ``<region prefix>-<suffix>`` around this group."""
    engine_version: str = Field(default="7.1", pattern=r"^\d+\.\d+$")
    node_type: str = Field(default="cache.r7g.large", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    nodes: int = Field(default=2, ge=2, le=6)
    kms_key_arn: KmsKeyArnInput
    auth_token: StrInput
    auth_token_version: int = Field(default=1, ge=1)
    snapshot_retention_days: int = Field(default=7, ge=1, le=35)
    snapshot_window: str = Field(default="05:00-06:00", pattern=WINDOW)
    maintenance_window: str = Field(default="sun:06:30-sun:07:30", pattern=WEEKLY_WINDOW)
    protect: bool = True

    @model_validator(mode="after")
    def _role_fits(self) -> Self:
        if self.role is GroupRole.SECONDARY and self.global_datastore_id is None:
            raise ValueError("global_datastore_id: a secondary joins the global datastore")
        if self.role is GroupRole.SECONDARY and self.global_datastore_suffix is not None:
            raise ValueError("global_datastore_suffix: only the primary creates the datastore")
        if self.role is GroupRole.PRIMARY and self.global_datastore_id is not None:
            raise ValueError("global_datastore_id: the primary creates the datastore, not joins")
        return self


class CacheReplicationGroup(pulumi.ComponentResource):
    """A region's replication group (and, for the primary, the global datastore)."""

    id: pulumi.Output[str]
    arn: pulumi.Output[str]
    primary_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    global_datastore_id: pulumi.Output[str] | None

    def __init__(
        self,
        name: str,
        args: CacheReplicationGroupArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{PACKAGE}:cache:CacheReplicationGroup", name, None, opts)
        provider = require_provider(opts, "CacheReplicationGroup")
        self.security_group: StoreSecurityGroup = store_security_group(
            self,
            name,
            provider,
            args,
            port=PORT,
            description=f"ElastiCache {args.replication_group_id}: Redis (TLS, AUTH) from clients",
        )
        self.subnet_group = store_subnet_group(
            aws.elasticache.SubnetGroup,
            self,
            name,
            provider,
            args,
            group_name=args.replication_group_id,
            description=f"ElastiCache {args.replication_group_id}",
        )
        primary = args.role is GroupRole.PRIMARY
        self.group = aws.elasticache.ReplicationGroup(
            f"{name}-group",
            replication_group_id=args.replication_group_id,
            description=args.description,
            engine="redis" if primary else None,
            engine_version=args.engine_version if primary else None,
            node_type=args.node_type if primary else None,
            global_replication_group_id=None if primary else args.global_datastore_id,
            num_cache_clusters=args.nodes,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            transit_encryption_mode="required",
            auth_token_wo=args.auth_token,
            auth_token_wo_version=args.auth_token_version,
            snapshot_retention_limit=args.snapshot_retention_days,
            snapshot_window=args.snapshot_window,
            maintenance_window=args.maintenance_window,
            final_snapshot_identifier=f"{args.replication_group_id}-final",
            subnet_group_name=self.subnet_group.name,
            security_group_ids=[self.security_group.id],
            port=PORT,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags=args.tags,
            opts=child_opts(self, provider, protect=args.protect, ignore_changes=MEMBER_FLIPS),
        )
        self.datastore: aws.elasticache.GlobalReplicationGroup | None = None
        self.global_datastore_id = None
        if args.global_datastore_suffix is not None:
            self.datastore = aws.elasticache.GlobalReplicationGroup(
                f"{name}-global",
                global_replication_group_id_suffix=args.global_datastore_suffix,
                global_replication_group_description=f"{args.description} (global datastore)",
                primary_replication_group_id=self.group.id,
                automatic_failover_enabled=True,
                opts=child_opts(
                    self, provider, protect=args.protect, ignore_changes=DATASTORE_FLIPS
                ),
            )
            self.global_datastore_id = self.datastore.global_replication_group_id
        self.id = self.group.id
        self.arn = self.group.arn
        self.primary_endpoint = self.group.primary_endpoint_address
        self.reader_endpoint = self.group.reader_endpoint_address
        self.register_outputs(
            {
                "id": self.id,
                "arn": self.arn,
                "primary_endpoint": self.primary_endpoint,
                "global_datastore_id": self.global_datastore_id,
            }
        )
