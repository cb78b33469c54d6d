"""Kafka: point the applications at the target region's MSK cluster.

Clients cannot follow a CNAME to a broker list, so the applications read their bootstrap servers
from a ConfigMap, ``kafka-bootstrap`` (key ``bootstrap.servers``) in the app namespace; the step
writes the target cluster's IAM bootstrap list there (from the outputs, else
``kafka.get_bootstrap_brokers`` in the target region), before the workloads are scaled up.

The MSK Replicator (prod -> dr, in the dr region) is left alone and reported:

- unplanned: its source is dark; it resumes by itself if prod comes back, copying whatever prod
  accepted before the outage that had not crossed yet (identical topic names, so nothing collides).
- planned to dr: the writers were fenced first; the step waits until the replicator's
  ``ReplicationLatency`` reads 0 before switching, so no record is left behind, and leaves it
  running (it belongs to the dr stack, and copies nothing while prod is idle).
- failback to prod: nothing replicates dr -> prod (the stacks build one direction only), so records
  produced in dr while it was primary stay there; the step says so, and the README names the way to
  copy them back (``invoke restore.kafka`` from the dr vault).
"""

from __future__ import annotations

from typing import Any

from drkit.failover import kube
from drkit.failover.lag import MetricSpec, arn_region, read_lag, replicator_name
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.failover.waiting import wait_for
from drkit.ops.plan import FunctionStep, StepContext


def kafka_step(topology: Topology, runtime: Runtime) -> FunctionStep:
    msk = topology.outputs.msk
    config = topology.config.msk
    assert msk is not None and config is not None
    target, side = topology.target, topology.target_kube
    cluster = msk.clusters[target]
    known: dict[str, str] = {}

    def servers() -> str:
        if "servers" not in known:
            value = cluster.bootstrap_brokers_sasl_iam
            if not value:
                answer = runtime.aws.client("kafka", target).get_bootstrap_brokers(
                    ClusterArn=cluster.arn
                )
                value = answer.get("BootstrapBrokerStringSaslIam")
                if not value:
                    raise RuntimeError(f"{cluster.arn} has no IAM bootstrap brokers")
            known["servers"] = value
        return known["servers"]

    def current() -> str | None:
        return kube.bootstrap_servers(runtime.kube.api(side.context), side.namespace)

    def replicator(context: StepContext) -> dict[str, Any] | None:
        arn = msk.replicator_arn
        if not arn:
            return None
        region = arn_region(arn)
        described = runtime.aws.client("kafka", region).describe_replicator(ReplicatorArn=arn)
        state = str(described.get("ReplicatorState", "?"))
        into_target = region == target
        if not into_target:
            context.note(
                f"no replication {target} <- {region}: records produced in {region} while it was "
                "primary stay there (restore.kafka from its vault copies them back)"
            )
        elif not topology.planned:
            context.note(f"replicator {replicator_name(arn)} ({state}) left running: source dark")
        return {"arn": arn, "state": state, "into_target": into_target}

    def drain(report: dict[str, Any]) -> float:
        arn = report["arn"]
        spec = MetricSpec(
            config.store,
            arn_region(arn),
            "AWS/Kafka",
            "ReplicationLatency",
            [{"Name": "ReplicatorName", "Value": replicator_name(arn)}],
            0.001,
        )
        cloudwatch = runtime.aws.client("cloudwatch", spec.region)
        rpo = topology.rpo_seconds(config.store)
        start = runtime.monotonic()
        last: dict[str, Any] = {}

        def drained() -> bool | None:
            reading = read_lag(cloudwatch, spec, runtime, rpo)
            last["reading"] = reading.describe()
            return True if reading.seconds == 0 else None

        wait_for(
            runtime,
            drained,
            topology.request.wait_seconds,
            f"replicator {replicator_name(arn)} to drain (ReplicationLatency 0)",
            lambda: str(last.get("reading")),
        )
        return round(runtime.monotonic() - start, 1)

    def apply(context: StepContext) -> dict[str, Any]:
        report = replicator(context)
        result: dict[str, Any] = {"replicator": report}
        if topology.planned and report is not None and report["into_target"]:
            result["drained_after_seconds"] = drain(report)
        value = servers()
        kube.set_bootstrap_servers(
            runtime.kube.api(side.context), side.namespace, value, f"failover to {target}"
        )
        result["bootstrap_servers"] = value
        return result

    def verify(context: StepContext) -> None:
        if current() != servers():
            raise RuntimeError(
                f"ConfigMap {side.namespace}/{kube.BOOTSTRAP_CONFIGMAP} does not name "
                f"{cluster.name}"
            )
        context.note(f"clients bootstrap from {cluster.name}")

    drain_note = (
        ", after the replicator drains" if topology.planned and not topology.failback else ""
    )
    return FunctionStep(
        "kafka.clients",
        f"set {side.namespace}/{kube.BOOTSTRAP_CONFIGMAP} {kube.BOOTSTRAP_KEY} to "
        f"{cluster.name}'s bootstrap brokers ({side.context or 'current context'}){drain_note}; "
        "report the replicator",
        apply,
        check=lambda c: current() == servers(),
        confirm=verify,
    )
