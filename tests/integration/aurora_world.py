"""Aurora on the AWS emulator for the snapshot and restore tests: the dr stack's context over moto,
source clusters with real network and encryption settings, and clients with faults or Stubbers.

moto serves the RDS calls these tests make (clusters, instances, cluster snapshots, both kinds of
restore, the waiters' describes). Where it cannot produce a state, a ``Stubber`` answers only
that operation (``SplitClient``): moto reports ``LatestRestorableTime`` as "now" and every snapshot
as ``available`` at once, so a time between the latest restorable time and now, or a snapshot
still ``creating``, exists only as a stubbed response.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from botocore.stub import Stubber

from drkit.context import OpsContext
from drkit.local.s3 import LocalAws
from stackmodels import StackConfig, StackOutputs
from tests.integration.failover_world import SplitClient

ROOT = Path(__file__).resolve().parents[2]
AUDIT_BUCKET = "aipx-audit-west"


def dr_outputs(aws: LocalAws, clusters: dict[str, str]) -> StackOutputs:
    """The dr stack's outputs: both regions' clusters (``region -> cluster id``), us-east-1
    writing, AWS at the emulator."""

    def bucket(name: str, region: str) -> dict[str, str]:
        return {"name": name, "arn": f"arn:aws:s3:::{name}", "region": region}

    return StackOutputs.parse(
        {
            "stack": "dr",
            "role": "dr",
            "region": "us-west-2",
            "platform": "aipx",
            "backup_vault": bucket("aipx-vault-west", "us-west-2"),
            "vault_key_arn": "arn:aws:kms:us-west-2:123456789012:key/mrk-1",
            "audit_bucket": bucket(AUDIT_BUCKET, "us-west-2"),
            "gcs_mirror_bucket": "aipx-mirror",
            "k8s_namespace": "aipx",
            "k8s_backup_namespace": "dr-backups",
            "aws_endpoint_url": aws.endpoint_url,
            "aurora": {
                "global_cluster_id": "aipx-global",
                "global_cluster_arn": "arn:aws:rds::123456789012:global-cluster:aipx-global",
                "primary_region": "us-east-1",
                "clusters": {
                    region: {
                        "id": name,
                        "arn": f"arn:aws:rds:{region}:123456789012:cluster:{name}",
                        "region": region,
                        "endpoint": f"{name}.example",
                        "reader_endpoint": f"{name}-ro.example",
                    }
                    for region, name in clusters.items()
                },
            },
        },
        "dr",
    )


def dr_context(aws: LocalAws, clusters: dict[str, str], **wrapped: Any) -> Any:
    """The dr stack over the emulator; ``wrap=`` passes every AWS client through a function."""
    config = StackConfig.for_stack("dr", ROOT)
    outputs = dr_outputs(aws, clusters)
    if wrapped:
        return WrappedContext("dr", config, outputs, **wrapped)
    return OpsContext("dr", config, outputs)


def _unwrapped(service: str, client: Any) -> Any:
    return client


@dataclass(frozen=True)
class WrappedContext(OpsContext):
    """The stack with each AWS client passed through ``wrap`` (a fault, a Stubber)."""

    wrap: Callable[[str, Any], Any] = _unwrapped

    def aws(self, service: str, region: str | None = None) -> Any:
        return self.wrap(service, super().aws(service, region))


@dataclass
class FailOnce:
    """``wrap`` for a context: ``operation`` (e.g. ``CreateDBInstance``) fails with ``code`` the
    first ``times`` it is called, across every client the context makes; then AWS answers."""

    operation: str
    code: str
    times: int = 1
    failed: list[str] = field(default_factory=list)

    def __call__(self, service: str, client: Any) -> Any:
        def fail(params: dict[str, Any], **_: Any) -> None:
            if len(self.failed) < self.times:
                self.failed.append(str(params))
                raise ClientError(
                    {"Error": {"Code": self.code, "Message": "injected by the test"}},
                    self.operation,
                )

        client.meta.events.register(f"before-call.{service}.{self.operation}", fail)
        return client


@dataclass
class StubOnly:
    """``wrap`` for a context: the named RDS operations are answered by a ``Stubber`` (its
    queued responses, in order, with the exact parameters), everything else by moto."""

    operations: set[str]
    stubbed: Any = None
    stubber: Stubber | None = None

    def __call__(self, service: str, client: Any) -> Any:
        if service != "rds":
            return client
        if self.stubbed is None:
            import boto3

            self.stubbed = boto3.client(
                "rds",
                region_name=client.meta.region_name,
                endpoint_url="http://127.0.0.1:9",  # never reached: the Stubber answers
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            self.stubber = Stubber(self.stubbed)
            self.stubber.activate()
        return SplitClient(client, self.stubbed, self.operations)


@dataclass(frozen=True)
class AuroraSource:
    """A writer cluster as infra builds it: own subnet group and security group, a customer KMS
    key, a non-default port, IAM auth, deletion protection, tags, and a writer instance."""

    id: str
    region: str
    subnet_group: str
    security_group: str
    kms_key: str
    writer: str

    @property
    def arn(self) -> str:
        return f"arn:aws:rds:{self.region}:123456789012:cluster:{self.id}"


def aurora_source(
    aws: LocalAws, prefix: str, region: str = "us-east-1", instance_class: str = "db.r7g.large"
) -> AuroraSource:
    name = f"{prefix}-{secrets.token_hex(3)}"
    ec2: Any = aws.client("ec2", region)
    rds: Any = aws.client("rds", region)
    kms: Any = aws.client("kms", region)
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{n}.0/24", AvailabilityZone=f"{region}{z}")[
            "Subnet"
        ]["SubnetId"]
        for n, z in ((1, "a"), (2, "b"))
    ]
    group = ec2.create_security_group(GroupName=f"{name}-db", Description="db", VpcId=vpc)[
        "GroupId"
    ]
    rds.create_db_subnet_group(
        DBSubnetGroupName=f"{name}-subnets",
        DBSubnetGroupDescription="database subnets",
        SubnetIds=subnets,
    )
    key = kms.create_key(Description=f"{name} storage")["KeyMetadata"]["Arn"]
    rds.create_db_cluster(
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        EngineVersion="16.8",
        MasterUsername="trading_admin",
        MasterUserPassword="not-a-real-password",
        StorageEncrypted=True,
        KmsKeyId=key,
        DBSubnetGroupName=f"{name}-subnets",
        VpcSecurityGroupIds=[group],
        Port=5433,
        EnableIAMDatabaseAuthentication=True,
        DeletionProtection=True,
        BackupRetentionPeriod=7,
        CopyTagsToSnapshot=True,
        Tags=[{"Key": "team", "Value": "trading"}, {"Key": "store", "Value": "trading-db"}],
    )
    rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-1",
        DBClusterIdentifier=name,
        Engine="aurora-postgresql",
        DBInstanceClass=instance_class,
    )
    return AuroraSource(name, region, f"{name}-subnets", group, key, f"{name}-1")


def audit_bucket(aws: LocalAws) -> None:
    """The dr audit bucket, where a run's journal is copied (shared by the session's tests)."""
    s3: Any = aws.client("s3", "us-west-2")
    with contextlib.suppress(ClientError):  # another test made it already
        s3.create_bucket(
            Bucket=AUDIT_BUCKET,
            CreateBucketConfiguration={"LocationConstraint": "us-west-2"},
            ObjectLockEnabledForBucket=True,
        )


def cluster_ids(aws: LocalAws, region: str = "us-east-1") -> set[str]:
    rds: Any = aws.client("rds", region)
    return {c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]}
