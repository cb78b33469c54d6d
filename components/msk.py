"""MSK: a cluster per region, topic classes as config, and the replicator from prod to dr.

Each cluster is encrypted at rest with the region's data-store key, TLS between clients and
brokers and between brokers, IAM authentication only (no unauthenticated or plaintext access), and
multi-VPC private connectivity with IAM, which is how the replicator reaches the source cluster
from the dr region. Topics are not created here (they are data, not infrastructure): the cluster's
configuration refuses auto-created topics and defaults to the ``standard`` class's retention, and
the topic classes (critical 7 days replicated, standard 3 days, archive 30 days in tiered storage)
are exported, so the task that creates topics applies the class's ``retention.ms``.

The **replicator** lives in the target region (MSK runs a replicator where it writes), so the dr
stack owns it and reads the source cluster's ARN, subnets and security group from prod's outputs.
It copies the critical topics with **identical** names (a client that fails over keeps its topic
names) and their configurations and ACLs, from the earliest retained offset, and synchronises
consumer-group offsets, so consumers resume in dr near where they stopped. prod owns the source
cluster's policy that lets the MSK service create the replicator's private connection.
"""

from __future__ import annotations

import re
from typing import Any, Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    child_opts,
    policy_document,
    require_provider,
    to_json,
)
from components.iam import iam_role, inline_policy, service_trust_policy
from components.network import StorePlacementArgs, StoreSecurityGroup, store_security_group

IAM_PORT = 9098
TOPIC = r"^[A-Za-z0-9._-]{1,249}$"
REPLICATOR_ACTIONS = [
    "kafka-cluster:AlterCluster",
    "kafka-cluster:AlterGroup",
    "kafka-cluster:AlterTopic",
    "kafka-cluster:AlterTopicDynamicConfiguration",
    "kafka-cluster:Connect",
    "kafka-cluster:CreateTopic",
    "kafka-cluster:DescribeCluster",
    "kafka-cluster:DescribeClusterDynamicConfiguration",
    "kafka-cluster:DescribeGroup",
    "kafka-cluster:DescribeTopic",
    "kafka-cluster:DescribeTopicDynamicConfiguration",
    "kafka-cluster:ReadData",
    "kafka-cluster:WriteData",
    "kafka-cluster:WriteDataIdempotently",
]
SOURCE_POLICY_ACTIONS = [
    "kafka:CreateVpcConnection",
    "kafka:DescribeClusterV2",
    "kafka:GetBootstrapBrokers",
]


def server_properties(default_retention_ms: int, brokers: int) -> str:
    """Durable defaults: no auto-created topics, replication 3 (or the broker count), 2 in sync."""
    replication = min(3, brokers)
    lines = {
        "auto.create.topics.enable": "false",
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(max(1, replication - 1)),
        "unclean.leader.election.enable": "false",
        "num.partitions": "6",
        "log.retention.ms": str(default_retention_ms),
        "delete.topic.enable": "true",
    }
    return "".join(f"{key}={value}\n" for key, value in lines.items())


def kafka_resource_arns(cluster_arn: str) -> list[str]:
    """The cluster, its topics and its groups, as ``kafka-cluster:*`` policies name them."""
    match = re.match(r"^(arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}):cluster/(.+)$", cluster_arn)
    if match is None:
        raise ValueError(f"{cluster_arn!r} is not an MSK cluster ARN")
    prefix, name_and_uuid = match.groups()
    return [
        cluster_arn,
        f"{prefix}:topic/{name_and_uuid}/*",
        f"{prefix}:group/{name_and_uuid}/*",
    ]


def topic_pattern(topic: str) -> str:
    """An anchored regular expression matching exactly ``topic`` (the replicator takes regexes)."""
    return "^" + topic.replace(".", "\\.") + "$"


def replication_source_policy(cluster_arn: str) -> dict[str, Any]:
    """The source cluster's policy: the MSK service may open the replicator's connection."""
    return policy_document(
        [
            {
                "Sid": "MskReplicatorReadsThisCluster",
                "Effect": "Allow",
                "Principal": {"Service": "kafka.amazonaws.com"},
                "Action": SOURCE_POLICY_ACTIONS,
                "Resource": cluster_arn,
            }
        ]
    )


class MskClusterArgs(StorePlacementArgs):
    cluster_name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,63}$")
    kafka_version: str = Field(pattern=r"^\d+\.\d+\.(\d+|x)(\.[a-z]+)?$")
    instance_type: str = Field(pattern=r"^kafka\.[a-z0-9]+\.[a-z0-9]+$")
    broker_nodes: int = Field(default=3, ge=2)
    volume_gib: int = Field(default=1000, ge=1, le=16384)
    kms_key_arn: KmsKeyArnInput
    subnet_ids: list[str] = Field(min_length=2, max_length=3)
    default_retention_ms: int = Field(ge=1)
    """Retention of a topic created without its class's settings (the ``standard`` class)."""
    tiered_storage: bool = False
    """MSK tiered storage, for classes that keep data beyond local disk (the archive class)."""
    allow_replication_source: bool = False
    """prod: let the MSK service open the replicator's private connection to this cluster."""
    protect: bool = True

    @model_validator(mode="after")
    def _brokers_spread_over_subnets(self) -> Self:
        if self.broker_nodes % len(self.subnet_ids):
            raise ValueError(
                f"broker_nodes: {self.broker_nodes} is not a multiple of the "
                f"{len(self.subnet_ids)} client subnets (MSK spreads brokers evenly)"
            )
        return self


class MskCluster(pulumi.ComponentResource):
    """One region's MSK cluster with its configuration and security group."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    bootstrap_brokers_sasl_iam: pulumi.Output[str]
    security_group_id: pulumi.Output[str]

    def __init__(
        self, name: str, args: MskClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:streaming:MskCluster", name, None, opts)
        provider = require_provider(opts, "MskCluster")
        self.security_group: StoreSecurityGroup = store_security_group(
            self,
            name,
            provider,
            args,
            port=IAM_PORT,
            description=f"MSK {args.cluster_name}: Kafka (IAM, TLS) from clients and replicator",
            members_talk=True,
        )
        self.configuration = aws.msk.Configuration(
            f"{name}-configuration",
            name=args.cluster_name,
            description="Durable defaults; topics are created with their class's retention",
            kafka_versions=[args.kafka_version],
            server_properties=server_properties(args.default_retention_ms, args.broker_nodes),
            opts=child_opts(self, provider),
        )
        self.cluster = aws.msk.Cluster(
            f"{name}-cluster",
            cluster_name=args.cluster_name,
            kafka_version=args.kafka_version,
            number_of_broker_nodes=args.broker_nodes,
            broker_node_group_info={
                "instance_type": args.instance_type,
                "client_subnets": args.subnet_ids,
                "security_groups": [self.security_group.id],
                "storage_info": {"ebs_storage_info": {"volume_size": args.volume_gib}},
                "connectivity_info": {
                    "vpc_connectivity": {"client_authentication": {"sasl": {"iam": True}}}
                },
            },
            encryption_info={
                "encryption_at_rest_kms_key_arn": args.kms_key_arn,
                "encryption_in_transit": {"client_broker": "TLS", "in_cluster": True},
            },
            client_authentication={"sasl": {"iam": True}, "unauthenticated": False},
            configuration_info={
                "arn": self.configuration.arn,
                "revision": self.configuration.latest_revision,
            },
            enhanced_monitoring="PER_TOPIC_PER_BROKER",
            storage_mode="TIERED" if args.tiered_storage else "LOCAL",
            tags=args.tags,
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.policy: aws.msk.ClusterPolicy | None = None
        if args.allow_replication_source:
            self.policy = aws.msk.ClusterPolicy(
                f"{name}-replication-source",
                cluster_arn=self.cluster.arn,
                policy=self.cluster.arn.apply(lambda arn: to_json(replication_source_policy(arn))),
                opts=child_opts(self, provider),
            )
        self.arn = self.cluster.arn
        self.name = self.cluster.cluster_name
        self.bootstrap_brokers_sasl_iam = self.cluster.bootstrap_brokers_sasl_iam
        self.security_group_id = self.security_group.id
        self.register_outputs(
            {
                "arn": self.arn,
                "bootstrap_brokers_sasl_iam": self.bootstrap_brokers_sasl_iam,
                "security_group_id": self.security_group_id,
            }
        )


class ReplicatedCluster(ComponentArgs):
    """A cluster as the replicator reaches it: its ARN and where to put the connection's ENIs."""

    arn: StrInput
    subnet_ids: list[StrInput] = Field(min_length=2)
    security_group_id: StrInput


class MskReplicatorArgs(ComponentArgs):
    replicator_name: str = Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9-]{0,127}$")
    role_name: str = Field(pattern=r"^[A-Za-z0-9+=,.@_-]{1,64}$")
    account_id: str = Field(pattern=r"^\d{12}$")
    source: ReplicatedCluster
    target: ReplicatedCluster
    topics: list[str] = Field(min_length=1)
    """The critical topics, by exact name."""
    consumer_groups: list[str] = Field(default_factory=lambda: [".*"])
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _topic_names(self) -> Self:
        bad = [t for t in self.topics if not re.match(TOPIC, t)]
        if bad:
            raise ValueError(f"topics: {bad} are not Kafka topic names ({TOPIC})")
        return self


def replicator_policy(source_arn: str, target_arn: str) -> dict[str, Any]:
    return policy_document(
        [
            {
                "Sid": "ReplicateBetweenTheClusters",
                "Effect": "Allow",
                "Action": REPLICATOR_ACTIONS,
                "Resource": [*kafka_resource_arns(source_arn), *kafka_resource_arns(target_arn)],
            }
        ]
    )


class MskReplicator(pulumi.ComponentResource):
    """The MSK Replicator (in the target region) and its service execution role."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: MskReplicatorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:streaming:MskReplicator", name, None, opts)
        provider = require_provider(opts, "MskReplicator")
        self.role = iam_role(
            self,
            name,
            provider,
            args,
            description="The MSK Replicator reads the source cluster and writes the target",
            assume_role_policy=to_json(
                service_trust_policy("kafka.amazonaws.com", args.account_id)
            ),
        )
        policy = pulumi.Output.all(args.source.arn, args.target.arn).apply(
            lambda arns: to_json(replicator_policy(arns[0], arns[1]))
        )
        self.role_policy = inline_policy(self, name, provider, self.role, policy)

        def cluster(side: ReplicatedCluster) -> aws.msk.ReplicatorKafkaClusterArgsDict:
            return {
                "amazon_msk_cluster": {"msk_cluster_arn": side.arn},
                "vpc_config": {
                    "subnet_ids": side.subnet_ids,
                    "security_groups_ids": [side.security_group_id],
                },
            }

        self.replicator = aws.msk.Replicator(
            f"{name}-replicator",
            replicator_name=args.replicator_name,
            description="Critical topics and consumer offsets, prod -> dr, identical names",
            service_execution_role_arn=self.role.arn,
            kafka_clusters=[cluster(args.source), cluster(args.target)],
            replication_info_list={
                "source_kafka_cluster_arn": args.source.arn,
                "target_kafka_cluster_arn": args.target.arn,
                "target_compression_type": "NONE",
                "topic_replications": [
                    {
                        "topics_to_replicates": [topic_pattern(t) for t in args.topics],
                        "copy_topic_configurations": True,
                        "copy_access_control_lists_for_topics": True,
                        "detect_and_copy_new_topics": True,
                        "starting_position": {"type": "EARLIEST"},
                        "topic_name_configuration": {"type": "IDENTICAL"},
                    }
                ],
                "consumer_group_replications": [
                    {
                        "consumer_groups_to_replicates": args.consumer_groups,
                        "synchronise_consumer_group_offsets": True,
                        "detect_and_copy_new_consumer_groups": True,
                    }
                ],
            },
            tags=args.tags,
            opts=child_opts(self, provider, depends_on=[self.role_policy]),
        )
        self.arn = self.replicator.arn
        self.register_outputs({"arn": self.arn})
