"""The ``account-compromise`` scenario (issue 22): an attacker holding the production account's
credentials destroys what they can reach, and every store comes back from the isolated account.

The attacker acts with exactly the credentials the production stack's jobs hold (the prod vault's
S3 client, the mirror's GCS client, the isolated vault as the backup writer reaches it):

- the prod vault: every object version deleted (``BypassGovernanceRetention``, as an administrator
  may), then a delete marker over every key still there; Object Lock COMPLIANCE refuses the
  versions it protects, and each refusal is recorded;
- the mirror: every object deleted; its locked retention policy refuses the young ones;
- the isolated vault: a listing, then (aimed at the prod vault's keys, which the isolated copies
  share) every key deleted, a bulk delete, an overwrite, a retention shortened, the bucket
  policy, lock rule and bucket itself; the vault account refuses each, recorded.

The servers are then treated as lost too (the account is not trusted): every store is restored into
new servers from the isolated vault, read through its reader role, at one common recovery point,
and every write verified as ``region-loss-from-backups`` does from the mirror. Those servers stand
by before the attack (the recovery account's pilot-light environment), and the RTO is measured
from the end of the attack (the writers stopped before it began) to every store verified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from drkit.drill.world import DrillWorld
from drkit.kinds import fresh_restores

if TYPE_CHECKING:
    from drkit.drill.scenarios import ScenarioResult

ACCOUNT_COMPROMISE = "account-compromise"
BATCH = 1000


@dataclass(frozen=True)
class Attempt:
    """One kind of destructive request the attacker made on one copy: how many were made
    (succeeded) and how many refused, with the refusal's code and one example."""

    copy: str
    action: str
    made: int
    refused: int
    code: str = ""
    example: str = ""

    def line(self) -> str:
        text = f"{self.copy}: {self.action}: {self.made} made, {self.refused} refused"
        return text + (f" ({self.code}: {self.example})" if self.refused else "")


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", type(error).__name__))
    return str(getattr(error, "code", "") or type(error).__name__)


def _versions(client: Any, bucket: str) -> Iterator[dict[str, str]]:
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
            yield {"Key": item["Key"], "VersionId": item["VersionId"]}


def _delete_batches(
    copy: str, action: str, client: Any, bucket: str, objects: list[dict[str, str]], **extra: Any
) -> Attempt:
    made = refused = 0
    code = example = ""
    for start in range(0, len(objects), BATCH):
        batch = objects[start : start + BATCH]
        try:
            answer = client.delete_objects(Bucket=bucket, Delete={"Objects": batch}, **extra)
        except (ClientError, BotoCoreError) as error:
            refused += len(batch)
            code, example = _code(error), f"DeleteObjects of {len(batch)}: {error}"
            continue
        made += len(answer.get("Deleted", []))
        for item in answer.get("Errors", []):
            refused += 1
            code, example = str(item.get("Code")), f"{item.get('Key')}: {item.get('Message')}"
    return Attempt(copy, action, made, refused, code, example[:200])


def empty_s3(copy: str, client: Any, bucket: str) -> list[Attempt]:
    """Every version deleted that can be, then a delete marker over every key left."""
    versions = list(_versions(client, bucket))
    attempts = [
        _delete_batches(
            copy,
            "delete every object version (bypassing governance)",
            client,
            bucket,
            versions,
            BypassGovernanceRetention=True,
        )
    ]
    keys = sorted({item["Key"] for item in versions})
    attempts.append(
        _delete_batches(copy, "delete every key", client, bucket, [{"Key": k} for k in keys])
    )
    return attempts


def empty_gcs(copy: str, bucket: Any) -> list[Attempt]:
    made = refused = 0
    code = example = ""
    for blob in list(bucket.list_blobs()):
        try:
            blob.delete()
            made += 1
        except Exception as error:  # the retention policy's 403, as GCS answers
            refused += 1
            code, example = _code(error), f"{blob.name}: {error}"
    return [Attempt(copy, "delete every object", made, refused, code, example[:200])]


def attack_isolated(copy: str, client: Any, bucket: str, known_keys: list[str]) -> list[Attempt]:
    """Every destructive request the prod credentials can send to the isolated vault; each one
    is expected to be refused (a ``made`` count above 0 fails the scenario). First a listing,
    which the vault refuses too (its bucket policy grants the writers creates only); the
    attacker then aims at ``known_keys``, the prod vault's keys, which the isolated copies share
    (a delete by key, with no version id)."""
    attempts: list[Attempt] = []
    listing = "list every object version"
    try:
        versions = list(_versions(client, bucket))
        attempts.append(Attempt(copy, listing, 1, 0, "", ""))
    except (ClientError, BotoCoreError) as error:
        example = f"ListObjectVersions: {error}"
        attempts.append(Attempt(copy, listing, 0, 1, _code(error), example[:200]))
        versions = [{"Key": key} for key in known_keys]

    def each(action: str, calls: list[tuple[str, Callable[[], Any]]]) -> None:
        made = refused = 0
        code = example = ""
        for name, call in calls:
            try:
                call()
                made += 1
            except (ClientError, BotoCoreError) as error:
                refused += 1
                code, example = _code(error), f"{name}: {error}"
        attempts.append(Attempt(copy, action, made, refused, code, example[:200]))

    each(
        "delete each object version",
        [(v["Key"], _bind(client.delete_object, Bucket=bucket, **v)) for v in versions],
    )
    attempts.append(
        _delete_batches(
            copy,
            "delete every object version in bulk",
            client,
            bucket,
            versions,
            BypassGovernanceRetention=True,
        )
    )
    keys = sorted({v["Key"] for v in versions})
    later = datetime.now(UTC) + timedelta(days=1)
    each(
        "overwrite each object",
        [(k, _bind(client.put_object, Bucket=bucket, Key=k, Body=b"ransom")) for k in keys],
    )
    each(
        "shorten each object's retention",
        [
            (
                k,
                _bind(
                    client.put_object_retention,
                    Bucket=bucket,
                    Key=k,
                    Retention={"Mode": "GOVERNANCE", "RetainUntilDate": later},
                    BypassGovernanceRetention=True,
                ),
            )
            for k in keys
        ],
    )
    each(
        "change the bucket's policy, lock rule, or delete it",
        [
            ("policy", _bind(client.put_bucket_policy, Bucket=bucket, Policy=OPEN_POLICY)),
            (
                "lock rule",
                _bind(
                    client.put_object_lock_configuration,
                    Bucket=bucket,
                    ObjectLockConfiguration={"ObjectLockEnabled": "Enabled"},
                ),
            ),
            ("bucket", _bind(client.delete_bucket, Bucket=bucket)),
        ],
    )
    return attempts


OPEN_POLICY = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", '
    '"Action": "s3:*", "Resource": "*"}]}'
)


def _bind(call: Callable[..., Any], **arguments: Any) -> Callable[[], Any]:
    return lambda: call(**arguments)


def account_compromise(world: DrillWorld) -> ScenarioResult:
    """Strike with the prod credentials, then restore every store from the isolated vault."""
    from drkit.drill.scenarios import (
        ScenarioResult,
        _finish,
        _pause_backups,
        fresh_servers,
        outcome,
        restore_into,
        start_servers,
        stop_servers,
    )

    stores = [world.store(k) for k in fresh_restores()]
    result = ScenarioResult(
        ACCOUNT_COMPROMISE,
        "an attacker with the production account's credentials deletes every backup they can "
        "in the prod vault and the mirror and tries the isolated vault; every store restored "
        "into new servers from the isolated vault (reader role) at one recovery point",
    )
    ctx = world.ctx
    isolated = ctx.isolated_writer()  # the attacker's view of it: the prod writer's credentials
    if isolated is None:
        result.status = "failed"
        result.detail = "the stack has no isolated vault (isolated_vault output is null)"
        return result
    # The clean room stands by before the attack, as the recovery account's pilot-light
    # environment does: the RTO is the restore and its verification, not the servers' start.
    servers = fresh_servers(world.env.workdir / "clean-room")
    try:
        with world.phase("account", "clean room standing by"):
            start_servers(servers)
        with world.phase("account", "attack"):
            world.stop_writers()  # paused, not purged: the prod broker keeps what they sent
            for store in stores:
                _pause_backups(world, store)
            vault = ctx.vault()
            known = sorted({v["Key"] for v in _versions(vault.client, vault.bucket)})
            attempts = empty_s3(vault.name, vault.client, vault.bucket)
            mirror = ctx.mirror()
            if mirror is not None:
                attempts += empty_gcs(mirror.name, mirror.bucket)
            attempts += attack_isolated(isolated.name, isolated.client, isolated.bucket, known)
        # The RTO runs from when the attacker is done (the writers were stopped before it: no
        # write falls inside the attack), not through the attacker's own requests.
        disaster_at = datetime.now(UTC)
        result.refusals = [attempt.line() for attempt in attempts]
        for attempt in attempts:
            world.say(f"attacker: {attempt.line()}")
        breached = [a for a in attempts if a.copy == isolated.name and a.made]
        reader = ctx.isolated_reader()
        index = world.index(reader)
        _point, chosen, skew = index.common_point(stores, at=disaster_at)
        result.skew_seconds = round(skew.total_seconds(), 3)
        with world.phase("account", "restore + verify all"):
            done = restore_into(world, reader, index, chosen, servers, disaster_at)
        verified_at = datetime.now(UTC)
        outcomes = [outcome(world, store, *done[store]) for store in stores]
    finally:
        stop_servers(servers)
        for writer in world.writers.values():
            writer.resume()
        for store in stores:
            if world.scheduler is not None:
                world.scheduler.resume(store)
    finished = _finish(result, disaster_at, verified_at, outcomes)
    refused = Counter(a.copy for a in attempts for _ in range(a.refused))
    world.say(
        "refused to the attacker: "
        + ", ".join(f"{copy} {count}" for copy, count in sorted(refused.items()))
    )
    if breached:
        finished.status = "failed"
        finished.detail = "the isolated vault let the prod credentials " + "; ".join(
            a.line() for a in breached
        )
    return finished
