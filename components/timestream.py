"""Amazon Timestream for InfluxDB: the managed InfluxDB behind the time-series store.

One instance per region (prod's takes the writes and is backed up hourly; dr's is the empty
target a region-loss restore writes into), in the store's private subnets, not publicly
accessible, Multi-AZ with a standby by default, HTTPS only on ``port`` (8086). Timestream encrypts
storage with an AWS-owned key (it takes no customer key) and answers InfluxDB's v1 API, which the
backup reads (``/query`` with InfluxQL, the initial bucket as a database of the same name).

The initial operator password comes from a Secrets Manager secret like the other stores'; the
resource has no write-only password argument, so it is in the Pulumi state, encrypted as a
secret. The instance is ``protect``-ed.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import PACKAGE, StrInput, child_opts, require_provider
from components.network import StorePlacementArgs, StoreSecurityGroup, store_security_group

PORT = 8086


class InfluxDbInstanceArgs(StorePlacementArgs):
    name: str = Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$", min_length=3, max_length=40)
    instance_type: str = Field(default="db.influx.medium", pattern=r"^db\.influx\.[a-z0-9]+$")
    storage_type: Literal["InfluxIOIncludedT1", "InfluxIOIncludedT2", "InfluxIOIncludedT3"] = (
        "InfluxIOIncludedT1"
    )
    allocated_storage_gib: int = Field(default=100, ge=20, le=16384)
    deployment_type: Literal["SINGLE_AZ", "WITH_MULTIAZ_STANDBY"] = "WITH_MULTIAZ_STANDBY"
    organization: str = Field(min_length=1, max_length=64)
    bucket: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{1,63}$")
    username: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
    password: StrInput
    subnet_ids: list[str] = Field(min_length=1)
    """One is enough for ``SINGLE_AZ``."""
    protect: bool = True


class InfluxDbInstance(pulumi.ComponentResource):
    """A region's Timestream for InfluxDB instance and its security group."""

    id: pulumi.Output[str]
    arn: pulumi.Output[str]
    endpoint: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: InfluxDbInstanceArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{PACKAGE}:timeseries:InfluxDbInstance", name, None, opts)
        provider = require_provider(opts, "InfluxDbInstance")
        self.security_group: StoreSecurityGroup = store_security_group(
            self,
            name,
            provider,
            args,
            port=PORT,
            description=f"Timestream for InfluxDB {args.name}: HTTPS from clients",
        )
        self.instance = aws.timestreaminfluxdb.DbInstance(
            f"{name}-instance",
            name=args.name,
            db_instance_type=args.instance_type,
            db_storage_type=args.storage_type,
            allocated_storage=args.allocated_storage_gib,
            deployment_type=args.deployment_type,
            organization=args.organization,
            bucket=args.bucket,
            username=args.username,
            password=pulumi.Output.secret(args.password),
            port=PORT,
            publicly_accessible=False,
            vpc_subnet_ids=args.subnet_ids,
            vpc_security_group_ids=[self.security_group.id],
            tags=args.tags,
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.id = self.instance.id
        self.arn = self.instance.arn
        self.endpoint = self.instance.endpoint
        self.register_outputs({"id": self.id, "arn": self.arn, "endpoint": self.endpoint})
