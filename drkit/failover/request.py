"""What a failover or failback was asked to do, and the clocks and clients it runs with."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from drkit.failover.clients import AwsClients, KubeClients


class CachePromotion(StrEnum):
    AUTO = "auto"
    """planned: ``failover_global_replication_group``; unplanned: disassociate the DR member."""
    FAILOVER = "failover"
    DISASSOCIATE = "disassociate"


class FailoverRequest(BaseModel):
    """The arguments of ``invoke failover`` / ``invoke failback``; journaled, so ``--resume``
    continues with exactly the same ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    to: str = Field(default="dr", pattern="^(dr|prod)$")
    """The side that becomes primary: ``dr`` (failover) or ``prod`` (failback)."""
    planned: bool = False
    """A switchover with no data loss (drills): needs the primary region up."""
    dns_control_plane: bool = False
    """Edit the PRIMARY records (Route 53 API, us-east-1) instead of forcing the health check."""
    cache_promotion: CachePromotion = CachePromotion.AUTO
    kube_context: str | None = None
    """The target cluster's kubeconfig context (default: that stack's ``kubernetes.context``)."""
    source_kube_context: str | None = None
    """The cluster being fenced (default: the other stack's ``kubernetes.context``)."""
    wait_seconds: float = Field(default=900.0, gt=0)
    """How long a promotion may take before its step fails (it can be resumed)."""
    dns_wait_seconds: float = Field(default=300.0, ge=0)
    """How long to wait for a switch alarm to change state (one 60 s period plus evaluation)."""
    update_stack_config: bool = False


@dataclass
class Runtime:
    """Everything a step touches outside this process, injectable for tests."""

    aws: AwsClients
    kube: KubeClients
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    poll_seconds: float = 15.0
