"""DNS: send the service names to the new primary, through Route 53's data plane.

Default (data plane): publish the service's switch metric in the dr region (``FailoverSwitch``):
1 fences prod's PRIMARY record (failover), 0 lifts the fence (failback). The switch alarm goes to
ALARM (or OK), the prod health check that reads it turns unhealthy (or healthy), and Route 53's
data plane answers with the SECONDARY (or PRIMARY) record. No Route 53 API call, so it works while
us-east-1, where that API lives, is dark. Done means the alarm is in the wanted state; the step
waits for CloudWatch's evaluation (one 60 s period) up to ``--dns-wait-seconds``.

The standbys provision no Route 53 ARC routing control (costed and declined in
components/README.md), so there is none to force.

``--dns-control-plane`` (fallback, when the switch cannot work: a missing alarm, CloudWatch
trouble): UPSERT prod's PRIMARY record to answer with the target's endpoint (failback: with
prod's own again), keeping its set identifier, failover role and health check. This needs Route
53's API in us-east-1.
"""

from __future__ import annotations

from typing import Any

from drkit.failover.clients import ROUTE53_REGION
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.failover.waiting import wait_for
from drkit.ops.plan import FunctionStep, StepContext
from stackmodels.outputs import DnsService, FailoverSwitch

REPUBLISH_S = 60.0


def dns_steps(topology: Topology, runtime: Runtime) -> list[FunctionStep]:
    dns = topology.outputs.dns
    if dns is None:
        return []
    if topology.request.dns_control_plane:
        return [
            _record_step(topology, runtime, dns.zone_id, name, service)
            for name, service in sorted(dns.services.items())
        ]
    return [
        _switch_step(topology, runtime, name, switch)
        for name, switch in sorted(dns.switches.items())
    ]


def fenced_value(topology: Topology) -> int:
    """1 fences prod (the target is dr), 0 lifts the fence (the target is prod)."""
    return 0 if topology.failback else 1


def alarm_state(cloudwatch: Any, switch: FailoverSwitch) -> dict[str, Any]:
    alarms = cloudwatch.describe_alarms(AlarmNames=[switch.alarm_name])["MetricAlarms"]
    if not alarms:
        raise RuntimeError(
            f"switch alarm {switch.alarm_name!r} does not exist in {switch.region}: deploy the dr "
            "stack, or use --dns-control-plane"
        )
    return dict(alarms[0])


def check_alarm_watches_switch(alarm: dict[str, Any], switch: FailoverSwitch) -> None:
    """The alarm must watch exactly the metric we publish, or publishing moves nothing."""
    dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    watched = (alarm.get("Namespace"), alarm.get("MetricName"), dimensions)
    wanted = (switch.namespace, switch.metric, dict(switch.dimensions))
    if watched != wanted:
        raise RuntimeError(
            f"alarm {switch.alarm_name!r} watches {watched}, not the switch {wanted}: "
            "publishing would not move it"
        )


def publish(cloudwatch: Any, switch: FailoverSwitch, value: int, runtime: Runtime) -> None:
    cloudwatch.put_metric_data(
        Namespace=switch.namespace,
        MetricData=[
            {
                "MetricName": switch.metric,
                "Dimensions": [
                    {"Name": k, "Value": v} for k, v in sorted(switch.dimensions.items())
                ],
                "Timestamp": runtime.now(),
                "Value": float(value),
                "Unit": "Count",
            }
        ],
    )


def _switch_step(
    topology: Topology, runtime: Runtime, service: str, switch: FailoverSwitch
) -> FunctionStep:
    value = fenced_value(topology)
    wanted = "ALARM" if value == 1 else "OK"

    def cloudwatch() -> Any:
        return runtime.aws.client("cloudwatch", switch.region)

    def apply(context: StepContext) -> dict[str, Any]:
        alarm = alarm_state(cloudwatch(), switch)
        check_alarm_watches_switch(alarm, switch)
        publish(cloudwatch(), switch, value, runtime)
        published = {"at": runtime.monotonic(), "times": 1}
        start = published["at"]

        def settled() -> bool | None:
            if alarm_state(cloudwatch(), switch)["StateValue"] == wanted:
                return True
            if runtime.monotonic() - published["at"] >= REPUBLISH_S:
                publish(cloudwatch(), switch, value, runtime)  # a datum for the next period
                published["at"], published["times"] = runtime.monotonic(), published["times"] + 1
            return None

        wait_for(
            runtime,
            settled,
            topology.request.dns_wait_seconds,
            f"alarm {switch.alarm_name} to go {wanted} (CloudWatch evaluates each 60 s period)",
            lambda: str(alarm_state(cloudwatch(), switch)["StateValue"]),
        )
        context.note(f"{switch.alarm_name} {wanted}")
        return {
            "alarm": switch.alarm_name,
            "state": wanted,
            "published": published["times"],
            "waited_seconds": round(runtime.monotonic() - start, 1),
        }

    action = "fence prod's PRIMARY" if value == 1 else "lift the fence on prod's PRIMARY"
    return FunctionStep(
        f"dns.{service}",
        f"{action} record of {service}: put {switch.namespace} {switch.metric}={value} "
        f"{switch.dimensions} in {switch.region}; wait for alarm {switch.alarm_name} {wanted}",
        apply,
        check=lambda c: alarm_state(cloudwatch(), switch)["StateValue"] == wanted,
    )


def primary_record(route53: Any, zone_id: str, service: DnsService) -> dict[str, Any] | None:
    if service.primary is None:
        return None
    fqdn = service.name.rstrip(".") + "."
    sets = route53.list_resource_record_sets(
        HostedZoneId=zone_id,
        StartRecordName=fqdn,
        StartRecordType=service.type,
        StartRecordIdentifier=service.primary.set_identifier,
        MaxItems="10",
    )["ResourceRecordSets"]
    for record in sets:
        same_name = record["Name"].rstrip(".") == service.name.rstrip(".")
        if same_name and record.get("SetIdentifier") == service.primary.set_identifier:
            return dict(record)
    return None


def record_targets(record: dict[str, Any] | None) -> list[str]:
    return [r["Value"].rstrip(".") for r in (record or {}).get("ResourceRecords", [])]


def _record_step(
    topology: Topology, runtime: Runtime, zone_id: str, name: str, service: DnsService
) -> FunctionStep:
    if service.primary is None or service.secondary is None:
        raise ValueError(f"dns service {name!r}: outputs lack its primary or secondary record")
    primary, secondary = service.primary, service.secondary
    wanted = primary.target if topology.failback else secondary.target
    switch = topology.outputs.dns.switches.get(name) if topology.outputs.dns else None
    health_check = switch.health_check_id if switch else None

    def route53() -> Any:
        return runtime.aws.client("route53", ROUTE53_REGION)

    def done(context: StepContext) -> bool:
        record = primary_record(route53(), zone_id, service)
        return record_targets(record) == [wanted.rstrip(".")]

    def apply(context: StepContext) -> dict[str, Any]:
        record: dict[str, Any] = {
            "Name": service.name,
            "Type": service.type,
            "SetIdentifier": primary.set_identifier,
            "Failover": "PRIMARY",
            "TTL": service.ttl,
            "ResourceRecords": [{"Value": wanted}],
        }
        if health_check:
            record["HealthCheckId"] = health_check
        change = route53().change_resource_record_sets(
            HostedZoneId=zone_id,
            ChangeBatch={
                "Comment": f"trading-dr failover: {name} -> {wanted}",
                "Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}],
            },
        )
        return {"record": service.name, "target": wanted, "change": change["ChangeInfo"]["Id"]}

    def verify(context: StepContext) -> None:
        if not done(context):
            raise RuntimeError(f"{service.name} PRIMARY record does not answer with {wanted}")

    return FunctionStep(
        f"dns.{name}",
        f"UPSERT {service.name} PRIMARY ({primary.set_identifier}) -> {wanted} "
        "(Route 53 control plane, us-east-1)",
        apply,
        check=done,
        confirm=verify,
    )
