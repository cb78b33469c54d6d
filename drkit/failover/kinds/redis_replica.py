"""``redis-replica``: a Redis replica of the primary (``REPLICAOF`` with AUTH).

- fence, where the old master answers: ``min-replicas-to-write`` set far above its replica count,
  so it refuses every write (NOREPLICAS) until an operator resets it;
- promote: ``REPLICAOF NO ONE``; done when ``INFO replication`` says ``role:master``;
- post-check: a key set and read back through the stable name.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

from drkit.failover.kinds.base import Health, Protection, one_line
from drkit.local.lag import Lag, _redis_client, redis_lag
from stackmodels.config import ProtectionKind

FENCE_REPLICAS = 1000
CHECK_KEY = "drkit:failover:check"


def role(url: str) -> str:
    with _redis_client(url) as client:
        return str(client.info("replication").get("role"))


class RedisReplica(Protection):
    kind = ProtectionKind.REDIS_REPLICA

    def health(self, planned: bool) -> list[Health]:
        sides = self.sides
        name = f"{self.store}: {sides.target.region} replica"
        try:
            now = role(sides.target.url)
            target = Health(name, True, "a replica" if now == "slave" else "already a master")
        except redis.RedisError as error:
            target = Health(name, False, one_line(error), planned)
        source = Health(
            f"{self.store}: {sides.source.region} master",
            sides.source.answers,
            "answers" if sides.source.answers else "does not answer",
            planned and not sides.source.answers,
        )
        return [target, source]

    def lag(self) -> Lag:
        source = self.sides.source
        return redis_lag(source.url if source.answers else None, self.sides.target.url)

    def fence(self) -> str:
        if not self.sides.source.answers:
            return f"{self.store}: old master did not answer at preflight; nothing to fence"
        try:
            with _redis_client(self.sides.source.url) as client:
                client.config_set("min-replicas-to-write", FENCE_REPLICAS)
        except redis.RedisError as error:
            return f"{self.store}: old master unreachable ({one_line(error)}); nothing to fence"
        return f"{self.store}: old master refuses writes (min-replicas-to-write {FENCE_REPLICAS})"

    def promoted(self) -> bool:
        return role(self.sides.target.url) == "master"

    def promote(self, planned: bool) -> dict[str, Any]:
        with _redis_client(self.sides.target.url) as client:
            client.execute_command("REPLICAOF", "NO", "ONE")
            now = client.info("replication")
        if now.get("role") != "master":
            raise RuntimeError(f"{self.store}: still {now.get('role')} after REPLICAOF NO ONE")
        return {"promoted": True, "master_repl_offset": now.get("master_repl_offset")}

    def postcheck(self, url: str) -> dict[str, Any]:
        value = uuid.uuid4().hex
        with _redis_client(url) as client:
            client.set(CHECK_KEY, value)
            if client.get(CHECK_KEY) != value.encode():
                raise RuntimeError(f"{self.store}: the post-check key was not read back")
        return {"wrote": CHECK_KEY}
