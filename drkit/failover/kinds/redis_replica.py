"""``redis-replica``: a Redis replica of the primary (``REPLICAOF`` with AUTH).

- fence, where the old master answers: ``min-replicas-to-write`` set far above its replica count,
  so it refuses every write (NOREPLICAS) until an operator resets it;
- replayed: the replica's processed offset against the fenced master's ``master_repl_offset``;
- promote: ``REPLICAOF NO ONE``; done when ``INFO replication`` says ``role:master``;
- post-check: a key set and read back through the stable name;
- rejoin (failback): the old master gets the fence lifted (``min-replicas-to-write`` 0), the
  group's password as ``masterauth``, then ``REPLICAOF`` the new master: a full sync replaces
  what it held; done when its link is up from the new master.
"""

from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import redis

from drkit.failover.kinds.base import Health, Protection, Replayed
from drkit.local.lag import Lag, _redis_client, redis_lag
from stackmodels.config import ProtectionKind

FENCE_REPLICAS = 1000
LINK_WAIT_S = 60.0
CHECK_KEY = "drkit:failover:check"


def role(url: str) -> str:
    with _redis_client(url) as client:
        return str(client.info("replication").get("role"))


class RedisReplica(Protection):
    kind = ProtectionKind.REDIS_REPLICA

    def health(self, planned: bool) -> list[Health]:
        def replica() -> str:
            return "a replica" if role(self.sides.target.url) == "slave" else "already a master"

        return [
            self.target_health("replica", planned, redis.RedisError, replica),
            self.source_health("master", planned),
        ]

    def lag(self) -> Lag:
        return redis_lag(self.answering_source, self.sides.target.url)

    def fence(self) -> str:
        def refuse_writes() -> str:
            with _redis_client(self.sides.source.url) as client:
                client.config_set("min-replicas-to-write", FENCE_REPLICAS)
            return (
                f"{self.store}: old master refuses writes (min-replicas-to-write {FENCE_REPLICAS})"
            )

        return self.fence_source("master", redis.RedisError, refuse_writes)

    def replayed(self) -> Replayed:
        with _redis_client(self.sides.source.url) as master:
            offset = int(master.info("replication")["master_repl_offset"])
        with _redis_client(self.sides.target.url) as replica:
            info = replica.info("replication")
        processed = int(info.get("slave_repl_offset", -1))
        detail = {
            "master_offset": offset,
            "replica_offset": processed,
            "master_link_status": info.get("master_link_status"),
        }
        return Replayed(max(0, offset - processed), "bytes", detail)

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

    # -- failback --------------------------------------------------------------------------------

    def rejoined(self) -> bool:
        source = urlsplit(self.sides.source.url)
        try:
            with _redis_client(self.sides.target.url) as client:
                info = client.info("replication")
        except redis.RedisError:
            return False
        return (
            info.get("role") == "slave"
            and int(info.get("master_port", 0)) == source.port
            and info.get("master_link_status") == "up"
        )

    def rejoin(self) -> dict[str, Any]:
        source = urlsplit(self.sides.source.url)
        started = time.monotonic()
        with _redis_client(self.sides.target.url) as client:
            client.config_set("min-replicas-to-write", 0)
            client.config_set("masterauth", unquote(source.password or ""))
            client.execute_command("REPLICAOF", source.hostname, source.port)
        deadline = time.monotonic() + LINK_WAIT_S
        while not self.rejoined():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.store}: the {self.sides.target.region} replica's link to "
                    f"{source.hostname}:{source.port} is not up within {LINK_WAIT_S:.0f}s"
                )
            time.sleep(0.1)
        return {
            "replicaof": f"{source.hostname}:{source.port}",
            "fence": "lifted",
            "link_seconds": round(time.monotonic() - started, 3),
        }
