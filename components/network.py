"""The security group in front of one data store: clients in, nothing else.

Each store gets its own group, so a rule for Redis never opens PostgreSQL. Ingress only from the
client CIDRs (the cluster's pod and node ranges) on the store's port, plus the group itself when
the store's members talk to each other or a replicator joins it (MSK). pulumi-aws creates a group
without the default allow-all egress rule, and none is added here: data stores answer, they do not
dial out (MSK's self rule covers its replicator).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components._common import child_opts


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
    *,
    vpc_id: str,
    port: int,
    client_cidrs: list[str],
    description: str,
    tags: dict[str, str],
    members_talk: bool = False,
) -> StoreSecurityGroup:
    """A group ``<name>-sg`` with one ingress rule per client CIDR on ``port``.

    ``members_talk`` adds ingress and egress on ``port`` from and to the group itself.
    """
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        description=description,
        vpc_id=vpc_id,
        revoke_rules_on_delete=True,
        tags=tags,
        opts=child_opts(owner, provider),
    )
    ingress = [
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-sg-in-{index}",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            cidr_ipv4=cidr,
            description=f"clients in {cidr}",
            opts=child_opts(owner, provider),
        )
        for index, cidr in enumerate(client_cidrs)
    ]
    egress: list[aws.vpc.SecurityGroupEgressRule] = []
    if members_talk:
        ingress.append(
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-sg-in-self",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                referenced_security_group_id=group.id,
                description="members and the replicator",
                opts=child_opts(owner, provider),
            )
        )
        egress.append(
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-sg-out-self",
                security_group_id=group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                referenced_security_group_id=group.id,
                description="members and the replicator",
                opts=child_opts(owner, provider),
            )
        )
    return StoreSecurityGroup(group, ingress, egress)
