"""Restore targets are names, checked before anything is created or connected to.

A target is where a restore writes: a PostgreSQL database, Kafka topics, an ElastiCache
replication group, a Kubernetes namespace. Each is a plain name in the system's own rules, never a
connection string or a path, and never a name the system itself depends on:

- a PostgreSQL database: 1 to 63 bytes (PostgreSQL's ``NAMEDATALEN - 1``; longer names are
  refused, not truncated as the server would), letters, digits and ``_``, not starting with a
  digit; not ``postgres``, ``template0`` or ``template1`` (every ``CREATE DATABASE`` copies
  ``template1``), and not the database the backup was taken from;
- Kafka: every target topic is written by one source topic only (two ``--rename`` onto one topic,
  or a rename onto a topic restored under its own name, would merge two topics' records);
- an ElastiCache replication group: AWS's rules (1 to 40 characters, a letter first, letters,
  digits and single hyphens, no hyphen last);
- a new Aurora cluster (``--target-cluster``): RDS's rules for a cluster id (a letter first,
  lowercase letters, digits and single hyphens, no hyphen last), at most 56 characters (its
  writer is ``<id>-writer``, and instance ids have at most 63); never the cluster being restored,
  the global database's id or one of its member clusters, in any region;
- a Kubernetes namespace: a DNS-1123 label, not one of the cluster's own namespaces, and given as
  ``--namespace-to`` only when it is not the namespace backed up (omit it to restore in place).

Every refusal is a ``TargetRefused`` (a ``ValueError``): one line naming the input, exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

POSTGRES_MAX_BYTES = 63
POSTGRES_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
POSTGRES_RESERVED = frozenset({"postgres", "template0", "template1"})

REPLICATION_GROUP = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,39}")
REPLICATION_GROUP_MAX = 40

AURORA_CLUSTER = re.compile(r"[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*")
AURORA_CLUSTER_MAX = 63 - len("-writer")

DNS_1123_LABEL = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
KUBERNETES_RESERVED = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


class TargetRefused(ValueError):
    """A restore target that is not a valid name, or one the restore must never write into."""


def postgres_database(name: str, sources: Iterable[str] = ()) -> str:
    """``name`` as a target database, or ``TargetRefused`` naming it and the rule it breaks.

    ``sources`` are the database the backup was taken from and the store's live one: restoring
    over them is refused (restore beside, verify and swap, as the drill's corruption scenario does).
    """
    size = len(name.encode())
    if size == 0:
        raise TargetRefused("--target-database is empty; give a database name")
    if size > POSTGRES_MAX_BYTES:
        raise TargetRefused(
            f"target database {_shown(name)} is {size} bytes; PostgreSQL names are at most "
            f"{POSTGRES_MAX_BYTES} (it would truncate it, and connect to another database)"
        )
    if not POSTGRES_NAME.fullmatch(name):
        raise TargetRefused(
            f"target database {_shown(name)}: a database name, not a connection string or a "
            "path; allowed: letters, digits and _, not starting with a digit"
        )
    if name.lower() in POSTGRES_RESERVED:
        raise TargetRefused(
            f"target database {name!r} is one of PostgreSQL's own databases "
            f"({', '.join(sorted(POSTGRES_RESERVED))}); restore into a new database"
        )
    if name in set(sources):
        raise TargetRefused(
            f"target database {name!r} is the source database of the backup; restore beside it "
            "(omit --target-database, or name a new database) and swap once verified"
        )
    return name


def kafka_targets(targets: Mapping[str, str]) -> dict[str, str]:
    """``targets`` (restored topic -> target topic) with every target written by one topic only."""
    writers: dict[str, list[str]] = {}
    for topic, target in targets.items():
        writers.setdefault(target, []).append(topic)
    merged = {target: topics for target, topics in writers.items() if len(topics) > 1}
    if merged:
        shown = "; ".join(
            f"{', '.join(sorted(topics))} -> {target!r}"
            for target, topics in sorted(merged.items())
        )
        raise TargetRefused(
            f"two topics would be restored into one ({shown}): their records would merge; "
            "give each restored topic its own target (--rename SOURCE=TARGET)"
        )
    return dict(targets)


def kafka_renames(pairs: Iterable[str]) -> dict[str, str]:
    """``SOURCE=TARGET`` pairs from the command line; a source renamed twice is refused."""
    renames: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise TargetRefused(f"--rename {pair!r}: write it as SOURCE_TOPIC=TARGET_TOPIC")
        if old in renames and renames[old] != new:
            raise TargetRefused(
                f"--rename {old}={renames[old]} and --rename {pair}: topic {old!r} renamed twice; "
                "give one target per topic"
            )
        renames[old] = new
    kafka_targets(renames)
    return renames


def replication_group(name: str) -> str:
    """A new ElastiCache replication group id, by AWS's naming rules."""
    if len(name) > REPLICATION_GROUP_MAX or not REPLICATION_GROUP.fullmatch(name):
        raise TargetRefused(
            f"--replication-group {_shown(name)}: not an ElastiCache replication group id; "
            f"allowed: 1 to {REPLICATION_GROUP_MAX} lowercase letters, digits and single "
            "hyphens, starting with a letter, not ending with a hyphen"
        )
    return name


def aurora_cluster(name: str, protected: Mapping[str, str] | None = None) -> str:
    """A new Aurora cluster's id; ``protected`` maps the ids it must not be to what they are
    (the cluster restored, the global database and its members)."""
    if len(name) > AURORA_CLUSTER_MAX or not AURORA_CLUSTER.fullmatch(name):
        raise TargetRefused(
            f"--target-cluster {_shown(name)}: not an Aurora cluster id; allowed: 1 to "
            f"{AURORA_CLUSTER_MAX} lowercase letters, digits and single hyphens, starting with a "
            "letter, not ending with a hyphen (the writer is <id>-writer, at most 63)"
        )
    for taken, what in (protected or {}).items():
        if taken and name == taken.lower():
            raise TargetRefused(
                f"--target-cluster {name!r} is {what}; a restore creates a NEW cluster beside it "
                "(omit --target-cluster for <cluster>-restored-<time>)"
            )
    return name


def kubernetes_namespace(name: str, source: str | None = None) -> str:
    """A namespace to restore into given with ``--namespace-to``."""
    if len(name) > 63 or not DNS_1123_LABEL.fullmatch(name):
        raise TargetRefused(
            f"--namespace-to {_shown(name)}: not a namespace name (DNS-1123 label: at most 63 "
            "lowercase letters, digits and -, starting and ending with a letter or digit)"
        )
    if name in KUBERNETES_RESERVED:
        raise TargetRefused(
            f"--namespace-to {name!r} is one of the cluster's own namespaces "
            f"({', '.join(sorted(KUBERNETES_RESERVED))}); restore into the application's "
            "namespace or a new one"
        )
    if source is not None and name == source:
        raise TargetRefused(
            f"--namespace-to {name!r} is the namespace the backup was taken from; omit "
            "--namespace-to to restore in place"
        )
    return name


def _shown(name: str) -> str:
    """The name as typed, shortened for one line (a pasted connection string can be long)."""
    text = name if len(name) <= 80 else name[:77] + "..."
    return repr(text)
