"""The Stubber expectations of an unplanned failover to dr, call by call, exact params."""

from __future__ import annotations

from tests.integration.failover_world import (
    DR,
    PROD,
    World,
    datastore,
    db_cluster,
    global_cluster,
    replication_group,
)


def expect_preflight(world: World) -> None:
    ids = world.ids
    rds, cache, kafka = (world.clients.stub(s, DR) for s in ("rds", "elasticache", "kafka"))
    rds.add_response(
        "describe_db_clusters", db_cluster(ids, DR), {"DBClusterIdentifier": ids.db(DR)}
    )
    cache.add_response(
        "describe_replication_groups",
        replication_group(ids, DR),
        {"ReplicationGroupId": ids.cache(DR)},
    )
    kafka.add_response(
        "describe_cluster_v2",
        {"ClusterInfo": {"ClusterArn": ids.msk_arn(DR), "State": "ACTIVE"}},
        {"ClusterArn": ids.msk_arn(DR)},
    )


def expect_aurora_failover(world: World) -> None:
    ids, rds = world.ids, world.clients.stub("rds", DR)
    describe = {"GlobalClusterIdentifier": ids.global_db}
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)  # is_done
    rds.add_response("describe_global_clusters", global_cluster(ids, PROD), describe)  # apply
    rds.add_response(
        "failover_global_cluster",
        {},
        {
            "GlobalClusterIdentifier": ids.global_db,
            "TargetDbClusterIdentifier": ids.db_arn(DR),
            "AllowDataLoss": True,
        },
    )
    moving = global_cluster(ids, PROD, status="failing-over", moving_to=DR)
    rds.add_response("describe_global_clusters", moving, describe)  # first poll
    for _ in range(2):  # second poll, verify
        rds.add_response("describe_global_clusters", global_cluster(ids, DR), describe)


def expect_cache_disassociation(world: World) -> None:
    ids, cache = world.ids, world.clients.stub("elasticache", DR)
    describe = {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True}
    cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), describe)
    cache.add_response("describe_global_replication_groups", datastore(ids, PROD, DR), describe)
    cache.add_response(
        "disassociate_global_replication_group",
        {},
        {
            "GlobalReplicationGroupId": ids.datastore,
            "ReplicationGroupId": ids.cache(DR),
            "ReplicationGroupRegion": DR,
        },
    )
    for _ in range(2):  # poll, verify: no longer a member, available on its own
        cache.add_response(
            "describe_global_replication_groups", datastore(ids, PROD, None), describe
        )
        cache.add_response(
            "describe_replication_groups",
            replication_group(ids, DR),
            {"ReplicationGroupId": ids.cache(DR)},
        )


def expect_replicator(world: World) -> None:
    world.clients.stub("kafka", DR).add_response(
        "describe_replicator",
        {"ReplicatorArn": world.ids.replicator_arn, "ReplicatorState": "RUNNING"},
        {"ReplicatorArn": world.ids.replicator_arn},
    )


def expect_postcheck(world: World) -> None:
    ids = world.ids
    world.clients.stub("rds", DR).add_response(
        "describe_global_clusters",
        global_cluster(ids, DR),
        {"GlobalClusterIdentifier": ids.global_db},
    )
    cache = world.clients.stub("elasticache", DR)
    cache.add_response(
        "describe_global_replication_groups",
        datastore(ids, PROD, None),
        {"GlobalReplicationGroupId": ids.datastore, "ShowMemberInfo": True},
    )
    cache.add_response(
        "describe_replication_groups",
        replication_group(ids, DR),
        {"ReplicationGroupId": ids.cache(DR)},
    )
