"""Who is source and who is target, and every id the steps need, from the dr stack's outputs.

The dr stack exports both sides (its own and prod's, read through its StackReference), so a
failover needs nothing from the primary region, not even its Pulumi outputs. The prod stack's
config file (a local file) only supplies the prod cluster's kubeconfig context and namespace for
the fence and for a failback.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from drkit.context import OpsContext
from drkit.failover.request import FailoverRequest
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import Role
from stackmodels.errors import ConfigError


class TopologyError(ValueError):
    """The stack or its outputs cannot drive this operation; the message says what is missing."""


@dataclass(frozen=True)
class KubeSide:
    region: str
    context: str | None
    namespace: str


@dataclass(frozen=True)
class Topology:
    source: str
    """The region that stops being primary."""
    target: str
    """The region that becomes primary."""
    prod_region: str
    dr_region: str
    planned: bool
    request: FailoverRequest
    config: StackConfig
    outputs: StackOutputs
    target_kube: KubeSide
    source_kube: KubeSide | None
    """None when the source stack's config file is not here: the fence skips Kubernetes."""

    @property
    def failback(self) -> bool:
        return self.target == self.prod_region

    def side(self, region: str) -> str:
        return "prod" if region == self.prod_region else "dr"

    def rpo_seconds(self, store: str) -> float:
        data_class = self.config.stores[store].data_class
        return self.config.data_classes[data_class].rpo.total_seconds()


def resolve(ctx: OpsContext, request: FailoverRequest, project_dir: Path) -> Topology:
    """Check that ``ctx`` is the dr stack and that its outputs carry both sides of every store."""
    config, outputs = ctx.config, ctx.outputs
    if config.role is not Role.DR:
        raise TopologyError(
            f"--stack {ctx.stack}: failover and failback run from the dr stack's outputs, which "
            "carry both regions (prod's outputs name no dr resource); use --stack dr"
        )
    dr_region, prod_region = config.region, config.peer_region
    target, source = (dr_region, prod_region) if request.to == "dr" else (prod_region, dr_region)
    problems = []
    if outputs.aurora is not None:
        problems += _missing("aurora.clusters", outputs.aurora.clusters, (target, source))
    if outputs.elasticache is not None:
        groups = outputs.elasticache.replication_groups
        problems += _missing("elasticache.replication_groups", groups, (target, source))
    if outputs.msk is not None:
        problems += _missing("msk.clusters", outputs.msk.clusters, (target,))
    if problems:
        raise TopologyError("; ".join(problems) + " (deploy the dr stack after prod)")
    prod_config = _peer_config(config, project_dir)
    dr_kube = KubeSide(dr_region, config.kubernetes.context, config.kubernetes.namespace)
    prod_kube = (
        KubeSide(prod_region, prod_config.kubernetes.context, prod_config.kubernetes.namespace)
        if prod_config is not None
        else None
    )
    if request.to == "dr":
        target_kube, source_kube = dr_kube, prod_kube
    else:
        if prod_kube is None:
            raise TopologyError(
                f"failback needs the prod cluster's context: Pulumi.{config.primary_stack}.yaml "
                f"is not in {project_dir}"
            )
        target_kube, source_kube = prod_kube, dr_kube
    if request.kube_context:
        target_kube = KubeSide(target_kube.region, request.kube_context, target_kube.namespace)
    if request.source_kube_context and source_kube is not None:
        source_kube = KubeSide(
            source_kube.region, request.source_kube_context, source_kube.namespace
        )
    return Topology(
        source=source,
        target=target,
        prod_region=prod_region,
        dr_region=dr_region,
        planned=request.planned,
        request=request,
        config=config,
        outputs=outputs,
        target_kube=target_kube,
        source_kube=source_kube,
    )


def _missing(what: str, by_region: Mapping[str, object], regions: tuple[str, ...]) -> list[str]:
    return [f"output {what} has no entry for {r}" for r in regions if r not in by_region]


def _peer_config(config: StackConfig, project_dir: Path) -> StackConfig | None:
    stack = config.primary_stack or "prod"
    try:
        return StackConfig.for_stack(stack, project_dir)
    except ConfigError:
        return None
