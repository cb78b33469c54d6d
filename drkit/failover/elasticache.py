"""ElastiCache global datastore: make the target region's replication group the primary.

Two documented ways, both called in the target region only:

- ``failover_global_replication_group(GlobalReplicationGroupId, PrimaryRegion,
  PrimaryReplicationGroupId)`` promotes a secondary and demotes the others, keeping the
  datastore ("ElastiCache doesn't support autofailover from one AWS Region to another. When
  needed, you can promote a secondary cluster manually"). Used for a planned switchover and for
  ``--cache-promotion failover``.
- ``disassociate_global_replication_group(GlobalReplicationGroupId, ReplicationGroupId,
  ReplicationGroupRegion)`` removes the DR member, which "will no longer receive updates from the
  primary cluster, but will remain as a standalone cluster in that Amazon region": the path that
  needs nothing from a dark primary region, the default of an unplanned failover. Its price: the
  datastore cannot simply be re-joined ("We don't support adding an existing cluster as
  secondary"); failback refuses and names the way back.

Done means the target group is the datastore's PRIMARY member with the datastore ``available``,
or (disassociated) no member of it and ``available`` on its own.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from drkit.failover.request import CachePromotion, Runtime
from drkit.failover.topology import Topology
from drkit.failover.waiting import wait_for
from drkit.ops.plan import FunctionStep, StepContext


def datastore(elasticache: Any, global_id: str) -> dict[str, Any] | None:
    try:
        found = elasticache.describe_global_replication_groups(
            GlobalReplicationGroupId=global_id, ShowMemberInfo=True
        )["GlobalReplicationGroups"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "GlobalReplicationGroupNotFoundFault":
            return None
        raise
    return dict(found[0]) if found else None


def role_of(store: dict[str, Any] | None, group: str) -> str | None:
    for member in (store or {}).get("Members", []):
        if member.get("ReplicationGroupId") == group:
            return str(member.get("Role", "")).upper() or None
    return None


def group_status(elasticache: Any, group: str) -> str:
    groups = elasticache.describe_replication_groups(ReplicationGroupId=group)["ReplicationGroups"]
    return str(groups[0].get("Status", "?"))


def promotion_path(topology: Topology) -> CachePromotion:
    mode = topology.request.cache_promotion
    if topology.planned or mode is CachePromotion.FAILOVER:
        return CachePromotion.FAILOVER
    return CachePromotion.DISASSOCIATE


def cache_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    cache = topology.outputs.elasticache
    assert cache is not None
    target = topology.target
    global_id, group = cache.global_datastore_id, cache.replication_groups[target].id
    path = promotion_path(topology)
    seen: dict[str, Any] = {}

    def client() -> Any:
        return runtime.aws.client("elasticache", target)

    def is_primary() -> bool:
        store = datastore(client(), global_id)
        seen["last"] = store
        role = role_of(store, group)
        if role == "PRIMARY":
            return bool(store and store.get("Status") == "available")
        if role is None:  # disassociated: a standalone primary once it is available again
            return group_status(client(), group) == "available"
        return False

    def apply(context: StepContext) -> dict[str, Any]:
        store = datastore(client(), global_id)
        role = role_of(store, group)
        if store is not None and role is not None and store.get("Status") != "available":
            context.note(f"{global_id} is {store.get('Status')}: waiting, not asking again")
        elif path is CachePromotion.FAILOVER:
            client().failover_global_replication_group(
                GlobalReplicationGroupId=global_id,
                PrimaryRegion=target,
                PrimaryReplicationGroupId=group,
            )
        elif role is not None:
            client().disassociate_global_replication_group(
                GlobalReplicationGroupId=global_id,
                ReplicationGroupId=group,
                ReplicationGroupRegion=target,
            )
        start = runtime.monotonic()
        wait_for(
            runtime,
            lambda: True if is_primary() else None,
            topology.request.wait_seconds,
            f"{group} to be a primary",
            lambda: (
                f"datastore {(seen.get('last') or {}).get('Status', 'gone')}, "
                f"{group} is {role_of(seen.get('last'), group) or 'standalone'}"
            ),
        )
        if path is CachePromotion.DISASSOCIATE:
            context.note(f"{group} is a standalone primary; {global_id} keeps the old one")
        return {
            "primary": group,
            "path": path.value,
            "waited_seconds": round(runtime.monotonic() - start, 1),
        }

    def verify(context: StepContext) -> None:
        if not is_primary():
            raise RuntimeError(f"{group} is not a primary after the promotion")

    call = (
        f"failover_global_replication_group({global_id}, PrimaryRegion={target})"
        if path is CachePromotion.FAILOVER
        else f"disassociate_global_replication_group({global_id}, {group}) (standalone primary)"
    )
    return FunctionStep(
        "elasticache.promote",
        f"{call}: {group} becomes the primary",
        apply,
        check=lambda c: is_primary(),
        confirm=verify,
    )
