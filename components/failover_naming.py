"""Deterministic names of the standby and failover resources, shared by both stacks.

Like ``components.naming`` for the vaults: where prod must name something the dr stack creates
(the failover switch its health checks read, the AWS Backup vault it copies snapshots to), both
stacks compute the name from the same config, so prod never reads dr.
"""

from __future__ import annotations

import re

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")


def _identifier(value: str, what: str) -> str:
    if not _IDENTIFIER.match(value) or value.endswith("-") or "--" in value:
        raise ValueError(
            f"{what} {value!r} is not valid: 1-63 characters of a-z, 0-9 and single '-', "
            "starting with a letter; shorten the platform or store name"
        )
    return value


def aurora_global_cluster_id(platform: str, store: str) -> str:
    """``aipx-trading-db``: the global database, one per store (global, not regional)."""
    return _identifier(f"{platform}-{store}", "Aurora global cluster identifier")


def aurora_cluster_id(platform: str, store: str, region: str) -> str:
    """``aipx-trading-db-us-east-1``: a member cluster, named for its region (never its role,
    which a failover flips)."""
    return _identifier(f"{platform}-{store}-{region}", "Aurora cluster identifier")


def elasticache_group_id(platform: str, store: str, region: str) -> str:
    """Replication group ids are at most 40 characters."""
    name = f"{platform}-{store}-{_region_code(region)}"
    if len(name) > 40:
        raise ValueError(f"replication group id {name!r} is longer than 40 characters")
    return _identifier(name, "replication group id")


def elasticache_global_suffix(platform: str, store: str) -> str:
    return _identifier(f"{platform}-{store}", "global datastore suffix")


def msk_cluster_name(platform: str, store: str, region: str) -> str:
    return _identifier(f"{platform}-{store}-{region}", "MSK cluster name")


def msk_replicator_name(platform: str, store: str, source: str, target: str) -> str:
    return _identifier(
        f"{platform}-{store}-{_region_code(source)}-to-{_region_code(target)}",
        "MSK replicator name",
    )


def backup_vault_name(platform: str, region: str) -> str:
    """The AWS Backup vault of a region: prod's copy action names the dr one by this."""
    return _identifier(f"{platform}-aws-backup-{region}", "AWS Backup vault name")


def backup_vault_arn(partition: str, region: str, account_id: str, name: str) -> str:
    return f"arn:{partition}:backup:{region}:{account_id}:backup-vault:{name}"


def failover_switch_alarm_name(platform: str, service: str) -> str:
    """The dr-region alarm that fences a service's primary (prod's health check reads it)."""
    return _identifier(f"{platform}-failover-switch-{service}", "failover switch alarm name")


def _region_code(region: str) -> str:
    """``us-east-1`` -> ``ue1``: keeps length-limited ids short and still unique per region."""
    parts = region.split("-")
    return "".join(part if part.isdigit() else part[0] for part in parts[:-1]) + parts[-1]


def alert_topic_name(platform: str) -> str:
    """Each region's alert topic has this name, so each stack can name the other's."""
    return _identifier(f"{platform}-dr-alerts", "alert topic name")


def alert_topic_arn(partition: str, region: str, account_id: str, platform: str) -> str:
    return f"arn:{partition}:sns:{region}:{account_id}:{alert_topic_name(platform)}"
