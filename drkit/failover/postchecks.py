"""Post-checks: the new primary accepts writes and the service names lead to it.

- Aurora: the target member is the writer (``describe_global_clusters``); where credentials for the
  store are at hand (``DRKIT_<STORE>_USER``/``_PASSWORD``, or the local state), a heartbeat row is
  written to and read back from the target cluster's writer endpoint.
- ElastiCache: the target group is a primary and available.
- Workloads: every labelled workload has the replica count it asks for.
- Names: the switch alarm is in the wanted state (CloudWatch, dr region); then, best effort because
  Route 53's API lives in us-east-1, that the record Route 53 now answers with points at the new
  primary's endpoint and that the fenced health check reads the switch alarm. When us-east-1 is
  the old primary and the fence found it dark, Route 53's API is not called at all (nothing on the
  failover path calls the dark region but the fence). Nothing is resolved over the network: the
  endpoints are private.

The step's ``verified_at`` ends the measured RTO.
"""

from __future__ import annotations

from typing import Any

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from drkit.context import Credentials
from drkit.failover import aurora as aurora_steps
from drkit.failover import dns as dns_steps
from drkit.failover import elasticache as cache_steps
from drkit.failover import kube
from drkit.failover.clients import ROUTE53_REGION
from drkit.failover.request import Runtime
from drkit.failover.topology import Topology
from drkit.ops.plan import FunctionStep, StepContext

HEARTBEAT_TABLE = "drkit_failover_heartbeat"


def postcheck_step(topology: Topology, runtime: Runtime, credentials: Credentials) -> FunctionStep:
    def apply(context: StepContext) -> dict[str, Any]:
        checks: dict[str, str] = {}
        problems: list[str] = []
        for name, check in _checks(topology, runtime, credentials):
            try:
                checks[name] = check(context)
            except Exception as error:
                problems.append(f"{name}: {error}")
                checks[name] = f"FAILED: {error}"
        if problems:
            raise RuntimeError("; ".join(problems))
        return {"verified_at": runtime.now().isoformat(), "checks": checks}

    return FunctionStep(
        "postcheck",
        f"check {topology.target} accepts writes (Aurora writer + heartbeat row, ElastiCache "
        "primary), workloads scaled, switch alarms set, records and health checks (best effort)",
        apply,
        mutates=False,
    )


Check = tuple[str, Any]


def _checks(topology: Topology, runtime: Runtime, credentials: Credentials) -> list[Check]:
    outputs, target = topology.outputs, topology.target
    checks: list[Check] = []
    if outputs.aurora is not None:
        checks.append(("aurora", lambda c: _aurora(topology, runtime, credentials, c)))
    if outputs.elasticache is not None:
        checks.append(("elasticache", lambda c: _cache(topology, runtime)))
    checks.append(("workloads", lambda c: _workloads(topology, runtime)))
    if outputs.dns is not None:
        checks.append(("dns", lambda c: _dns(topology, runtime, c)))
    del target
    return checks


def _aurora(
    topology: Topology, runtime: Runtime, credentials: Credentials, context: StepContext
) -> str:
    aurora = topology.outputs.aurora
    assert aurora is not None
    member = aurora.clusters[topology.target]
    rds = runtime.aws.client("rds", topology.target)
    cluster = aurora_steps.global_cluster(rds, aurora.global_cluster_id)
    if aurora_steps.writer_arn(cluster) != member.arn:
        raise RuntimeError(f"writer is {aurora_steps.writer_arn(cluster)}, not {member.arn}")
    store = topology.config.aurora.store if topology.config.aurora else "trading-db"
    try:
        login = credentials.for_store(store)
    except KeyError:
        context.note("no database credentials here: heartbeat not written")
        return f"{member.id} is the writer (no credentials for a heartbeat)"
    database = aurora.database or "postgres"
    try:
        connection = psycopg.connect(
            host=member.endpoint,
            port=member.port,
            dbname=database,
            user=login.user,
            password=login.password,
            connect_timeout=5,
            autocommit=True,
        )
    except psycopg.OperationalError as error:  # a private endpoint, seen from outside its VPC
        context.note(f"{member.endpoint} not reachable from here: heartbeat not written")
        return f"{member.id} is the writer (heartbeat not written: {error})"
    with connection:
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} "
            "(id bigserial PRIMARY KEY, region text NOT NULL, "
            "at timestamptz NOT NULL DEFAULT now())"
        )
        row = connection.execute(
            f"INSERT INTO {HEARTBEAT_TABLE} (region) VALUES (%s) RETURNING id", (topology.target,)
        ).fetchone()
        assert row is not None
        back = connection.execute(
            f"SELECT region FROM {HEARTBEAT_TABLE} WHERE id = %s", (row[0],)
        ).fetchone()
    if back is None or back[0] != topology.target:
        raise RuntimeError(f"heartbeat row {row[0]} did not read back")
    return f"{member.id} is the writer; heartbeat row {row[0]} written and read back"


def _cache(topology: Topology, runtime: Runtime) -> str:
    cache = topology.outputs.elasticache
    assert cache is not None
    group = cache.replication_groups[topology.target].id
    client = runtime.aws.client("elasticache", topology.target)
    store = cache_steps.datastore(client, cache.global_datastore_id)
    role = cache_steps.role_of(store, group)
    status = cache_steps.group_status(client, group)
    if role not in (None, "PRIMARY") or status != "available":
        raise RuntimeError(f"{group} is {role or 'standalone'} and {status}")
    return f"{group} is {'the primary' if role else 'a standalone primary'}, {status}"


def _workloads(topology: Topology, runtime: Runtime) -> str:
    side = topology.target_kube
    api = runtime.kube.api(side.context)
    wrong = kube.misscaled(api, side.namespace, primary=True)
    if wrong:
        raise RuntimeError("; ".join(wrong))
    return f"{len(kube.labelled_workloads(api, side.namespace))} workloads at their replica count"


def _dns(topology: Topology, runtime: Runtime, context: StepContext) -> str:
    dns = topology.outputs.dns
    assert dns is not None
    done: list[str] = []
    if not topology.request.dns_control_plane:
        wanted = "ALARM" if dns_steps.fenced_value(topology) == 1 else "OK"
        for switch in dns.switches.values():
            cloudwatch = runtime.aws.client("cloudwatch", switch.region)
            state = dns_steps.alarm_state(cloudwatch, switch)["StateValue"]
            if state != wanted:
                raise RuntimeError(f"{switch.alarm_name} is {state}, not {wanted}")
        done.append(f"{len(dns.switches)} switches {wanted}")
    fence = context.results.get("fence.primary") or {}
    if topology.source == ROUTE53_REGION and str(fence.get("aws", "")).startswith("unreachable"):
        context.note(f"Route 53 API not read: it lives in {ROUTE53_REGION}, dark at the fence")
        done.append("records not checked (Route 53's API region was unreachable)")
        return "; ".join(done)
    try:
        done.append(_route53(topology, runtime))
    except (BotoCoreError, ClientError) as error:
        context.note(
            f"Route 53 API not checked ({type(error).__name__}: its control plane is in "
            f"{ROUTE53_REGION})"
        )
        done.append("records not checked (Route 53 API unreachable)")
    return "; ".join(done)


def _route53(topology: Topology, runtime: Runtime) -> str:
    """The record Route 53 answers with now points at the target's endpoint, and the fenced
    health check reads the switch alarm (a wrong value fails; an unreachable API does not)."""
    dns = topology.outputs.dns
    assert dns is not None
    route53 = runtime.aws.client("route53", ROUTE53_REGION, fast_fail=True)
    for name, service in sorted(dns.services.items()):
        answering = service.primary if topology.failback else service.secondary
        if answering is None:
            raise RuntimeError(f"{name}: the outputs name no record for {topology.target}")
        sets = route53.list_resource_record_sets(
            HostedZoneId=dns.zone_id,
            StartRecordName=service.name.rstrip(".") + ".",
            StartRecordType=service.type,
            StartRecordIdentifier=answering.set_identifier,
            MaxItems="10",
        )["ResourceRecordSets"]
        record = next((r for r in sets if r.get("SetIdentifier") == answering.set_identifier), None)
        values = dns_steps.record_targets(record)
        if values != [answering.target.rstrip(".")]:
            raise RuntimeError(
                f"{service.name} {answering.set_identifier} answers {values}, not "
                f"{answering.target}"
            )
        switch = dns.switches.get(name)
        if switch is not None and switch.health_check_id:
            config = route53.get_health_check(HealthCheckId=switch.health_check_id)["HealthCheck"][
                "HealthCheckConfig"
            ]
            alarm = config.get("AlarmIdentifier") or {}
            if (alarm.get("Region"), alarm.get("Name")) != (switch.region, switch.alarm_name):
                raise RuntimeError(
                    f"health check {switch.health_check_id} reads {alarm or 'no alarm'}, not "
                    f"{switch.alarm_name} in {switch.region}"
                )
    return (
        f"{len(dns.services)} records point at {topology.target}; health checks read the switches"
    )
