"""Where one data store lives: its security group (clients in, nothing else) and subnet group.

Each store gets its own group, so a rule for Redis never opens PostgreSQL. Ingress only from the
client CIDRs (the cluster's pod and node ranges) on the store's port, plus the group itself when
the store's members talk to each other or a replicator joins it (MSK). pulumi-aws creates a group
without the default allow-all egress rule, and none is added here: data stores answer, they do not
dial out (MSK's self rule covers its replicator).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import ComponentArgs, child_opts

SubnetGroup = TypeVar("SubnetGroup", aws.rds.SubnetGroup, aws.elasticache.SubnetGroup)


class StorePlacementArgs(ComponentArgs):
    """Where a data store lives: the args fields every data-store component shares (a
    component's args subclass this; ``subnet_ids`` may be narrowed where the service needs)."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]+$")
    subnet_ids: list[str] = Field(min_length=2)
    client_cidrs: list[str] = Field(min_length=1)
    tags: dict[str, str] = Field(default_factory=dict)


@dataclass(frozen=True)
class StoreSecurityGroup:
    group: aws.ec2.SecurityGroup
    ingress: list[aws.vpc.SecurityGroupIngressRule]
    egress: list[aws.vpc.SecurityGroupEgressRule]

    @property
    def id(self) -> pulumi.Output[str]:
        return self.group.id


def store_security_group(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    placement: StorePlacementArgs,
    *,
    port: int,
    description: str,
    members_talk: bool = False,
) -> StoreSecurityGroup:
    """A group ``<name>-sg`` in the store's VPC with one ingress rule per client CIDR on ``port``.

    ``members_talk`` adds ingress and egress on ``port`` from and to the group itself.
    """
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        description=description,
        vpc_id=placement.vpc_id,
        revoke_rules_on_delete=True,
        tags=placement.tags,
        opts=child_opts(owner, provider),
    )
    on_port: dict[str, Any] = {
        "security_group_id": group.id,
        "ip_protocol": "tcp",
        "from_port": port,
        "to_port": port,
    }
    ingress = [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-sg-in-{index}",
            **on_port,
            cidr_ipv4=cidr,
            description=f"clients in {cidr}",
            opts=child_opts(owner, provider),
        )
        for index, cidr in enumerate(placement.client_cidrs)
    ]
    egress: list[aws.vpc.SecurityGroupEgressRule] = []
    if members_talk:
        itself: dict[str, Any] = {
            **on_port,
            "referenced_security_group_id": group.id,
            "description": "members and the replicator",
        }
        ingress.append(
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-sg-in-self", **itself, opts=child_opts(owner, provider)
            )
        )
        egress.append(
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-sg-out-self", **itself, opts=child_opts(owner, provider)
            )
        )
    return StoreSecurityGroup(group, ingress, egress)


def store_subnet_group(
    kind: type[SubnetGroup],
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    placement: StorePlacementArgs,
    *,
    group_name: str,
    description: str,
) -> SubnetGroup:
    """The store's subnet group ``<name>-subnets`` (an RDS or ElastiCache ``kind``) over the
    placement's subnets."""
    return kind(
        f"{name}-subnets",
        name=group_name,
        description=description,
        subnet_ids=placement.subnet_ids,
        tags=placement.tags,
        opts=child_opts(owner, provider),
    )
