"""The failover critical path: our plan's steps, each timed with AWS's published figures, run as
the plan orders them, against the same steps run one after another.

The plan is the real one: ``build_plan`` for an unplanned failover (the region-loss case) of the
dr stack as ``Pulumi.dr.yaml`` configures it, with the dependency edges ``build_plan`` declares.
Which steps it has follows from which sections the stack has (Aurora, ElastiCache, MSK, DNS
names), so a change to the plan or to the config changes this section; a step with no duration
below fails it, by name. Building a plan calls no API: the outputs here are those the dr stack
exports for its config, with placeholder ids.

Three figures per level (low, typical, high):

- one after another: the sum of every step;
- ours as ``Executor`` runs it: layer by layer, the steps of a layer in parallel, so the sum over
  layers of each layer's longest step;
- the DAG critical path: what an executor that starts each step as soon as its own dependencies
  end would take (the longest path through the plan's dependency graph).

Then the executor's claim is measured, not only computed: the real ``Executor`` runs the real
plan's layers with every step replaced by a sleep of its duration at 1 s = 10 ms, and the same
steps one per layer; the wall times are compared with the computed ones.
"""

from __future__ import annotations

import io
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from benchmarks.environment import ROOT, Bench
from benchmarks.measure import Figure
from benchmarks.report import Section, Table, number, spread
from drkit.context import Credentials, OpsContext
from drkit.failover.clients import FAST_CONNECT_TIMEOUT_S, FAST_READ_TIMEOUT_S
from drkit.failover.plan import POSTCHECK, build_plan, store_promotions
from drkit.failover.request import FailoverRequest, Runtime
from drkit.failover.topology import Topology, resolve
from drkit.failover.workloads import CATCH_ALL
from drkit.ops.executor import Executor, RunReport, Status
from drkit.ops.plan import Plan, PlanError, StepContext
from stackmodels import StackConfig, StackOutputs
from stackmodels.config import DNS_SWITCH_DETECTION, StoreKind
from stackmodels.durations import format_duration

Level = Literal["low", "typical", "high"]
LEVELS: tuple[Level, ...] = ("low", "typical", "high")
SCALE = 0.01
"""Seconds of sleep per second of AWS time in the measured runs (1 s = 10 ms)."""
QUICK_SCALE = 0.001


class Basis(StrEnum):
    PUBLISHED = "published"
    OUR_CODE = "our code"
    ASSUMPTION = "assumption"


@dataclass(frozen=True)
class StepTime:
    """How long one kind of step takes, in seconds, and where the figures come from."""

    low: float
    typical: float
    high: float
    basis: Basis
    source: str
    """The document and its address, or the reasoning when the figure is an assumption."""
    polls: bool = False
    """Our step waits for the effect by polling every ``Runtime.poll_seconds``: it ends at the
    first poll after the effect, 0 to one poll later (half a poll for the typical figure)."""

    def at(self, level: Level) -> float:
        return {"low": self.low, "typical": self.typical, "high": self.high}[level]


AURORA_GUIDE = "https://docs.aws.amazon.com/AmazonRDS/latest/AuroraUserGuide"
DURATIONS: Mapping[str, StepTime] = {
    "fence.primary": StepTime(
        0.5,
        2 * FAST_CONNECT_TIMEOUT_S,
        2 * (FAST_CONNECT_TIMEOUT_S + FAST_READ_TIMEOUT_S),
        Basis.OUR_CODE,
        "Unplanned, the primary region is dark: two calls to it (RDS, the Kubernetes API) with"
        f" drkit.failover.clients' fast-fail settings ({FAST_CONNECT_TIMEOUT_S:.0f} s connect,"
        f" {FAST_READ_TIMEOUT_S:.0f} s read, no retry). Low: both refused at once; typical: both"
        " time out connecting; high: both connect, then hang until the read timeout.",
    ),
    "measure.lag": StepTime(
        0.5,
        1.0,
        5.0,
        Basis.ASSUMPTION,
        "CloudWatch GetMetricData in the target region, one read per continuously protected"
        " store; AWS publishes no latency for it.",
    ),
    "aurora.promote": StepTime(
        30.0,
        60.0,
        300.0,
        Basis.PUBLISHED,
        "Aurora User Guide, Using Amazon Aurora global databases: 'You can typically promote a"
        " secondary cluster and make it available for writes in under a minute' (typical: 60 s);"
        " Using failover in an Amazon Aurora global database: 'RTO can be in the order of"
        f" minutes' (high: 5 min, our reading). Low (30 s) is an assumption. {AURORA_GUIDE}/"
        "aurora-global-database.html, .../aurora-global-database-disaster-recovery.html",
        polls=True,
    ),
    "elasticache.promote": StepTime(
        30.0,
        60.0,
        300.0,
        Basis.PUBLISHED,
        "Amazon ElastiCache FAQs, Global Datastore: 'Once initiated, the promotion typically"
        " completes in less than a minute' (typical: 60 s), https://aws.amazon.com/elasticache/"
        "faqs/. Published for promoting a secondary (failover_global_replication_group); an"
        " unplanned failover here disassociates the dr member instead, for which AWS publishes"
        " no figure: applying the promotion's is an assumption, as are low (30 s) and high"
        " (5 min).",
        polls=True,
    ),
    "kafka.clients": StepTime(
        0.5,
        1.0,
        5.0,
        Basis.ASSUMPTION,
        "describe_replicator, then the kafka-bootstrap ConfigMap written in the target cluster;"
        " unplanned, nothing waits for the MSK Replicator (its source is dark). The clients"
        " read the new list when their pods start: that is the pods' tail below.",
    ),
    "workloads.*": StepTime(
        0.5,
        1.0,
        5.0,
        Basis.ASSUMPTION,
        "A PATCH of spec.replicas per labelled Deployment and StatefulSet of the service (a warm"
        " service's: a PATCH of the pod template too, to restart them); the step does not wait"
        " for pods (their start is the pods' tail below).",
    ),
    "dns.*": StepTime(
        10.0,
        60.0,
        90.0,
        Basis.ASSUMPTION,
        "Publish PrimaryFenced=1, wait for the switch alarm to go to ALARM. The alarm's period"
        " is 60 s (components/dns_failover.py SWITCH_PERIOD; standard resolution, the only kind"
        " Route 53 health checks read), so the datum counts when its minute is evaluated"
        " (CloudWatch User Guide, Using Amazon CloudWatch alarms, https://docs.aws.amazon.com/"
        "AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html). AWS publishes no"
        " evaluation delay: 10 / 60 / 90 s are ours, chosen so that with the health check's"
        f" pickup they stay within stackmodels' DNS_SWITCH_DETECTION"
        f" ({format_duration(DNS_SWITCH_DETECTION)}).",
        polls=True,
    ),
    POSTCHECK: StepTime(
        1.0,
        3.0,
        10.0,
        Basis.ASSUMPTION,
        "describe calls (RDS, ElastiCache, CloudWatch, Kubernetes) and a heartbeat row written"
        " to and read from the new writer; no published latency.",
    ),
}
"""Duration by step kind: a step's id, or ``<prefix>.*`` for a family of steps (one per DNS
name). A plan step with no entry here fails the section, by name."""

ROUTE53_PICKUP = StepTime(
    0.0,
    10.0,
    30.0,
    Basis.ASSUMPTION,
    "Route 53 Developer Guide, How Amazon Route 53 determines whether a health check is healthy:"
    " a health check on a CloudWatch alarm 'monitors the data stream for the corresponding alarm"
    " instead of monitoring the alarm state'. AWS publishes no delay: 0 / 10 / 30 s are ours."
    " https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/"
    "dns-failover-determining-health-of-endpoints.html",
)
"""After a ``dns.<service>`` alarm changes: the health checks turn unhealthy. The record's TTL
(from the stack config) follows: resolvers may answer from cache until it expires."""
PODS_READY = StepTime(
    10.0,
    30.0,
    180.0,
    Basis.ASSUMPTION,
    "Kubernetes schedules the pods, the kubelet pulls the images, readiness probes pass. Low:"
    " images cached on running nodes; typical: an image pull; high: a node to add first (cluster"
    " autoscaling). Neither Kubernetes nor EKS publishes a figure.",
)
"""After a cold ``workloads.*`` step: the pods serve (and Kafka clients bootstrap from the new
list)."""
WARM_RESTART = StepTime(
    5.0,
    10.0,
    30.0,
    Basis.ASSUMPTION,
    "A warm service's pods already run in the dr region (images pulled, nodes up): the rolling"
    " restart starts each new pod on a running node, which reads the new bootstrap list and"
    " passes its readiness probe. The typical figure is the cold start's low one (images cached"
    " on running nodes); high: probes failing a few times while the clients connect. No"
    " published figure.",
)
"""After a warm service's ``workloads.<service>``: its restarted pods serve."""
EVENT_STREAM = "event-stream"
PODS = "pods.ready"
"""The pods of the workloads of no service (``workloads.scale-up``)."""
ROUTE53 = "route53."


def step_kind(step_id: str) -> str:
    if step_id in DURATIONS:
        return step_id
    family = step_id.split(".", 1)[0] + ".*"
    if family in DURATIONS:
        return family
    raise KeyError(
        f"the failover plan has a step {step_id!r} with no duration in benchmarks/failover.py"
        " DURATIONS: add its figures and their source"
    )


# -- the real plan -----------------------------------------------------------------------------


class NoCalls:
    """Building a plan calls no API; a call would be a bug in this benchmark."""

    def client(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("building a failover plan must not call AWS")

    def api(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("building a failover plan must not call Kubernetes")


def standby_outputs(config: StackConfig) -> StackOutputs:
    """What the dr stack exports for ``config``, with placeholder ids: the sections the plan
    reads (Aurora, ElastiCache, MSK, DNS names and their switches) exist exactly when the config
    has them."""
    dr, prod = config.region, config.peer_region
    account = "123456789012"
    platform = config.platform
    regions = (prod, dr)
    values: dict[str, Any] = {
        "stack": "dr",
        "role": "dr",
        "region": dr,
        "platform": platform,
        "backup_vault": {
            "name": f"{platform}-vault-{dr}",
            "arn": f"arn:aws:s3:::{platform}-vault-{dr}",
            "region": dr,
        },
        "vault_key_arn": f"arn:aws:kms:{dr}:{account}:key/mrk-placeholder",
        "audit_bucket": {
            "name": f"{platform}-audit-{dr}",
            "arn": f"arn:aws:s3:::{platform}-audit-{dr}",
            "region": dr,
        },
        "gcs_mirror_bucket": f"{platform}-mirror",
        "k8s_namespace": config.kubernetes.namespace,
        "k8s_backup_namespace": config.kubernetes.backup_namespace,
    }
    if config.aurora is not None:
        name = f"{platform}-{config.aurora.store}"
        values["aurora"] = {
            "global_cluster_id": name,
            "global_cluster_arn": f"arn:aws:rds::{account}:global-cluster:{name}",
            "primary_region": prod,
            "clusters": {
                r: {
                    "id": f"{name}-{r}",
                    "arn": f"arn:aws:rds:{r}:{account}:cluster:{name}-{r}",
                    "region": r,
                    "endpoint": f"{name}.cluster-x.{r}.rds.amazonaws.com",
                    "reader_endpoint": f"{name}.cluster-ro-x.{r}.rds.amazonaws.com",
                }
                for r in regions
            },
        }
    if config.elasticache is not None:
        name = f"{platform}-{config.elasticache.store}"
        values["elasticache"] = {
            "global_datastore_id": f"ldgnf-{name}",
            "primary_region": prod,
            "replication_groups": {
                r: {
                    "id": f"{name}-{r}",
                    "arn": f"arn:aws:elasticache:{r}:{account}:replicationgroup:{name}-{r}",
                    "region": r,
                    "primary_endpoint": f"master.{name}.x.{r}.cache.amazonaws.com",
                }
                for r in regions
            },
        }
    if config.msk is not None:
        name = f"{platform}-{config.msk.store}"
        values["msk"] = {
            "clusters": {
                r: {
                    "arn": f"arn:aws:kafka:{r}:{account}:cluster/{name}-{r}/x",
                    "name": f"{name}-{r}",
                    "region": r,
                    "bootstrap_brokers_sasl_iam": f"b-1.{name}.kafka.{r}.amazonaws.com:9098",
                    "security_group_id": "sg-0123456789abcdef0",
                }
                for r in regions
            },
            "replicator_arn": f"arn:aws:kafka:{dr}:{account}:replicator/{name}/x",
            "replicated_topics": config.msk.replicated_topics(),
        }
    if config.dns is not None:
        zone = config.dns.zone_name
        values["dns"] = {
            "zone_id": "ZPLACEHOLDER",
            "zone_name": zone,
            "services": {
                service: {
                    "name": f"{service}.{zone}",
                    "ttl": entry.ttl,
                    "store": entry.store,
                    "primary": {
                        "set_identifier": f"primary-{prod}",
                        "target": f"{service}.{prod}.example",
                        "region": prod,
                    },
                    "secondary": {
                        "set_identifier": f"secondary-{dr}",
                        "target": f"{service}.{dr}.example",
                        "region": dr,
                    },
                }
                for service, entry in config.dns.services.items()
            },
            "switches": {
                service: {
                    "alarm_name": f"{platform}-failover-switch-{service}",
                    "region": dr,
                    "namespace": "TradingDR/Failover",
                    "metric": "PrimaryFenced",
                    "dimensions": {"Service": service},
                    "health_check_id": f"hc-{service}",
                }
                for service in config.dns.services
            },
        }
    return StackOutputs.parse(values, "dr")


@dataclass(frozen=True)
class FailoverPlan:
    plan: Plan
    depends: dict[str, list[str]]
    """The dependency edges ``build_plan`` declared, for every step (empty: none)."""
    topology: Topology


def failover_plan(project: Path = ROOT, request: FailoverRequest | None = None) -> FailoverPlan:
    """The plan ``invoke failover`` would run for the dr stack of ``project``, built offline."""
    config = StackConfig.for_stack("dr", project)
    ctx = OpsContext("dr", config, standby_outputs(config))
    topology = resolve(ctx, request or FailoverRequest(), project)
    runtime = Runtime(aws=NoCalls(), kube=NoCalls())
    plan = build_plan(topology, runtime, Credentials(), {})
    depends = {step.id: list(plan.depends_on.get(step.id, [])) for step in plan.steps}
    layer_of = {step.id: n for n, layer in enumerate(plan.layers) for step in layer}
    for step_id, needs in depends.items():
        late = [d for d in needs if layer_of.get(d, len(plan.layers)) >= layer_of[step_id]]
        if late:
            raise PlanError(f"recorded dependencies of {step_id} {late} are not in earlier layers")
    return FailoverPlan(plan, depends, topology)


# -- the arithmetic ----------------------------------------------------------------------------


@dataclass
class Schedule:
    """When each step ends (seconds from the start) under one way of running the plan."""

    finish: dict[str, float]
    effect: dict[str, float]
    """When the step's effect lands: its end less the time our step spends noticing it (a poll)."""
    tails: dict[str, float] = field(default_factory=dict)
    """When what follows a step outside the plan ends (Route 53 answering, pods ready)."""

    @property
    def total(self) -> float:
        return max(self.finish.values(), default=0.0)

    @property
    def serving(self) -> float:
        """The plan done and every name and pod serving."""
        return max([self.total, *self.tails.values()])


@dataclass(frozen=True)
class Timing:
    """One level's figures for one plan."""

    level: Level
    seconds: dict[str, float]
    """Each step's duration: the AWS figure plus the wait for our next poll where it polls."""
    noticing: dict[str, float]
    """The part of ``seconds`` that is our poll, not AWS."""
    tail_seconds: dict[str, tuple[str, float]]
    """Step id -> (what follows it outside the plan, seconds)."""
    dag: Schedule
    batch: Schedule
    """Layer by layer: a layer starts when every step of the one before has ended."""
    sequential: Schedule
    critical_path: list[list[str]]
    eager: bool
    """The executor starts each step once its own dependencies end (the plan is eager)."""

    @property
    def ours(self) -> Schedule:
        """As ``Executor`` runs the plan: the DAG for an eager plan, else layer by layer."""
        return self.dag if self.eager else self.batch

    @property
    def ratio(self) -> float:
        return self.sequential.total / self.ours.total


def durations(
    failover: FailoverPlan, level: Level, poll_seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    noticing_share = {"low": 0.0, "typical": 0.5, "high": 1.0}[level]
    seconds, noticing = {}, {}
    for step in failover.plan.steps:
        figure = DURATIONS[step_kind(step.id)]
        noticing[step.id] = poll_seconds * noticing_share if figure.polls else 0.0
        seconds[step.id] = figure.at(level) + noticing[step.id]
    return seconds, noticing


def tails(failover: FailoverPlan, level: Level) -> dict[str, tuple[str, float]]:
    """What each step sets off outside the plan: a DNS switch, Route 53 answering the new record
    (health check pickup, then the record's TTL from the stack config); a scale-up, pods ready."""
    found: dict[str, tuple[str, float]] = {}
    config = failover.topology.config
    for step in failover.plan.steps:
        if step.id.startswith("dns.") and config.dns is not None:
            service = step.id.removeprefix("dns.")
            ttl = 0 if level == "low" else config.dns.services[service].ttl  # low: none cached
            found[step.id] = (f"{ROUTE53}{service}", ROUTE53_PICKUP.at(level) + ttl)
        elif step.id == CATCH_ALL:
            found[step.id] = (PODS, PODS_READY.at(level))
        elif step.id.startswith("workloads."):
            service = step.id.removeprefix("workloads.")
            start = WARM_RESTART if config.services[service].warm else PODS_READY
            found[step.id] = (pods_of(service), start.at(level))
    return found


def pods_of(service: str) -> str:
    return f"pods.{service}"


def _schedule(
    finish: dict[str, float], noticing: dict[str, float], tail_seconds: dict[str, tuple[str, float]]
) -> Schedule:
    effect = {k: v - noticing[k] for k, v in finish.items()}
    after = {name: effect[k] + seconds for k, (name, seconds) in tail_seconds.items()}
    return Schedule(finish, effect, after)


def dag_finish(
    order: list[str], depends: dict[str, list[str]], seconds: dict[str, float]
) -> dict[str, float]:
    """Each step starts when the last of its dependencies ends (``order`` is topological)."""
    finish: dict[str, float] = {}
    for step_id in order:
        start = max((finish[d] for d in depends.get(step_id, [])), default=0.0)
        finish[step_id] = start + seconds[step_id]
    return finish


def batch_finish(layers: list[list[str]], seconds: dict[str, float]) -> dict[str, float]:
    """``Executor``: a layer starts when every step of the one before has ended."""
    finish: dict[str, float] = {}
    start = 0.0
    for layer in layers:
        for step_id in layer:
            finish[step_id] = start + seconds[step_id]
        start = max((finish[s] for s in layer), default=start)
    return finish


def sequential_finish(order: list[str], seconds: dict[str, float]) -> dict[str, float]:
    return batch_finish([[s] for s in order], seconds)


def critical_path(depends: dict[str, list[str]], finish: dict[str, float]) -> list[list[str]]:
    """The chain of steps that ends last, each link the latest-ending dependencies of the next;
    steps that tie (end at the same moment) share a link."""
    return path_to(depends, finish, list(finish))


def path_to(
    depends: dict[str, list[str]], finish: dict[str, float], ends: list[str]
) -> list[list[str]]:
    """The chain of steps that ends last among ``ends``, back to the first step."""
    if not ends:
        return []

    def latest(candidates: Iterable[str]) -> list[str]:
        ids = list(candidates)
        end = max(finish[s] for s in ids)
        return [s for s in ids if abs(finish[s] - end) < 1e-9]

    path = [latest(ends)]
    while needs := sorted({d for s in path[-1] for d in depends.get(s, [])}):
        path.append(latest(needs))
    return path[::-1]


def timing(failover: FailoverPlan, level: Level, poll_seconds: float) -> Timing:
    seconds, noticing = durations(failover, level, poll_seconds)
    after = tails(failover, level)
    order = [step.id for step in failover.plan.steps]
    layers = [[step.id for step in layer] for layer in failover.plan.layers]
    dag = dag_finish(order, failover.depends, seconds)
    return Timing(
        level=level,
        seconds=seconds,
        noticing=noticing,
        tail_seconds=after,
        dag=_schedule(dag, noticing, after),
        batch=_schedule(batch_finish(layers, seconds), noticing, after),
        sequential=_schedule(sequential_finish(order, seconds), noticing, after),
        critical_path=critical_path(failover.depends, dag),
        eager=failover.plan.eager,
    )


def store_marks(failover: FailoverPlan) -> dict[str, list[str]]:
    """Store -> the steps and tails whose end means it serves again in the target region: its
    promotion, and Route 53 answering its name; for Kafka, the pods of the services its objective
    is for (those of its data class; Kafka clients read the new bootstrap list when they start);
    for Kubernetes state, every workload's pods. Stores the failover does not move (backups
    only) are left out."""
    config = failover.topology.config
    steps = {step.id for step in failover.plan.steps}
    marks: dict[str, list[str]] = {}

    def add(store: str, mark: str) -> None:
        marks.setdefault(store, []).append(mark)

    if config.aurora is not None and "aurora.promote" in steps:
        add(config.aurora.store, "aurora.promote")
    if config.elasticache is not None and "elasticache.promote" in steps:
        add(config.elasticache.store, "elasticache.promote")
    if config.msk is not None and "kafka.clients" in steps:
        store = config.msk.store
        add(store, "kafka.clients")
        users = [name for name, svc in config.services.items() if store in svc.stores]
        own = [n for n in users if config.services[n].data_class == config.stores[store].data_class]
        for service in own or users:
            add(store, pods_of(service))
        if not users:
            add(store, PODS)
    if config.dns is not None:
        for service, entry in config.dns.services.items():
            if f"dns.{service}" in steps:
                add(entry.store, f"{ROUTE53}{service}")
    for store in config.stores_of(StoreKind.KUBERNETES):
        add(store, PODS)
        for service in config.services:
            add(store, pods_of(service))
    return marks


def service_marks(failover: FailoverPlan) -> dict[str, list[str]]:
    """Service -> what must have ended for it to serve in the target region: its pods, and for
    each store it uses, the promotion and Route 53 answering the store's names."""
    topology = failover.topology
    promoted = store_promotions(topology)
    dns = topology.config.dns
    names = dns.services.items() if dns is not None else []
    return {
        service: [
            pods_of(service),
            *sorted({promoted[s] for s in entry.stores if s in promoted}),
            *(f"{ROUTE53}{name}" for name, e in names if e.store in entry.stores),
        ]
        for service, entry in topology.config.services.items()
    }


def path_to_marks(failover: FailoverPlan, timing_: Timing, marks: list[str]) -> list[list[str]]:
    """The critical path (ours) to the last of ``marks``, a tail shown after the step it follows."""
    schedule = timing_.ours
    tail_step = {name: step for step, (name, _) in timing_.tail_seconds.items()}
    end = {m: schedule.tails[m] if m in schedule.tails else schedule.finish[m] for m in marks}
    last = max(end.values())
    ends = [m for m in marks if abs(end[m] - last) < 1e-9]
    tails = [m for m in ends if m in tail_step]
    steps = [m for m in ends if m not in tail_step] + [tail_step[t] for t in tails]
    finish = dict(schedule.finish)
    for step in steps:  # so that path_to picks the step whose tail ends last, not its own end
        finish[step] = last
    path = path_to(failover.depends, finish, sorted(set(steps)))
    return [*path, tails] if tails else path


def ready_at(schedule: Schedule, marks: list[str]) -> float:
    return max(schedule.tails.get(m, schedule.finish.get(m, 0.0)) for m in marks)


# -- the measured check ------------------------------------------------------------------------


@dataclass
class SleepStep:
    """A plan step that takes ``seconds`` and changes nothing: the executor's view of a step."""

    id: str
    seconds: float
    description: str = ""
    mutates: bool = False

    def is_done(self, context: StepContext) -> bool:
        return False

    def apply(self, context: StepContext) -> float:
        time.sleep(self.seconds)
        return self.seconds

    def verify(self, context: StepContext) -> None:
        return None


def scaled_plans(
    failover: FailoverPlan, seconds: dict[str, float], scale: float
) -> tuple[Plan, Plan]:
    """The real plan (its dependencies, run as it is) with sleeping steps; and the same steps one
    per layer."""
    sleeping = {
        step.id: SleepStep(step.id, seconds[step.id] * scale, f"sleep for {step.id}")
        for step in failover.plan.steps
    }
    name = failover.plan.name
    ours = Plan.from_dependencies(
        f"{name}, sleeping",
        [sleeping[s.id] for s in failover.plan.steps],
        failover.depends,
        eager=failover.plan.eager,
    )
    one_by_one = Plan(f"{name}, one after another", [[sleeping[s.id]] for s in failover.plan.steps])
    return ours, one_by_one


def run_measured(executor: Executor, plan: Plan) -> tuple[float, RunReport]:
    """Wall seconds of the real executor running ``plan`` (journal and all), unattended."""
    run_id = f"bench-{secrets.token_hex(4)}"
    clock = time.monotonic()
    report = executor.run(plan, run_id=run_id, assume_yes=True)
    seconds = time.monotonic() - clock
    if report.status is not Status.SUCCEEDED:
        raise RuntimeError(f"the sleeping plan did not succeed: {report.status}")
    return seconds, report


# -- the section -------------------------------------------------------------------------------


def path_text(path: list[list[str]]) -> str:
    return " -> ".join(" / ".join(f"`{s}`" for s in link) for link in path)


def _s(value: float) -> str:
    return f"{number(value, 0 if value >= 10 else 1)} s"


def _minutes(value: float) -> str:
    return f"{_s(value)} ({value / 60:.1f} min)"


def _ms(value: float) -> str:
    return f"{number(value * 1000, 0)} ms"


def _ms_spread(values: list[float]) -> str:
    return spread(Figure([v * 1000 for v in values]), "ms", digits=0)


@dataclass
class Measured:
    """Wall seconds of the real executor, per level: the plan, and one step per layer."""

    ours: dict[Level, list[float]] = field(default_factory=dict)
    one_by_one: dict[Level, list[float]] = field(default_factory=dict)
    finish: dict[Level, dict[str, float]] = field(default_factory=dict)
    """Each step's end in the last run of the plan, from the executor's own step records, in
    seconds of AWS time (wall seconds / scale) after the run started."""

    def ratio(self, level: Level) -> float:
        return Figure(self.one_by_one[level]).median / Figure(self.ours[level]).median


def measure(
    failover: FailoverPlan, timings: dict[Level, Timing], scale: float, runs: int, journal: Path
) -> Measured:
    executor = Executor(journal_dir=journal, out=io.StringIO(), confirm=lambda _: True)
    measured = Measured()
    for level in LEVELS:
        ours, one_by_one = scaled_plans(failover, timings[level].seconds, scale)
        measured.ours[level], measured.one_by_one[level] = [], []
        for _ in range(runs):  # interleaved, as seed and ours are elsewhere
            seconds, report = run_measured(executor, ours)
            measured.ours[level].append(seconds)
            measured.one_by_one[level].append(run_measured(executor, one_by_one)[0])
            measured.finish[level] = step_ends(report, scale)
    return measured


def step_ends(report: RunReport, scale: float) -> dict[str, float]:
    """Each step's end after the first step's start, as the executor recorded it, unscaled."""
    starts = {r.id: datetime.fromisoformat(r.started_at) for r in report.steps if r.started_at}
    first = min(starts.values())
    return {
        r.id: ((starts[r.id] - first).total_seconds() + (r.seconds or 0.0)) / scale
        for r in report.steps
        if r.id in starts
    }


def _duration_rows(failover: FailoverPlan, poll: float) -> list[list[str]]:
    kinds = {step_kind(step.id) for step in failover.plan.steps}
    rows = [
        [
            f"`{kind}`",
            _s(figure.low),
            _s(figure.typical),
            _s(figure.high),
            f"+0 / {_s(poll / 2)} / {_s(poll)}" if figure.polls else "",
            figure.basis.value,
            figure.source,
        ]
        for kind, figure in DURATIONS.items()
        if kind in kinds
    ]
    dns = failover.topology.config.dns
    ttls = ", ".join(f"{name} {e.ttl} s" for name, e in (dns.services.items() if dns else []))
    pickup, pods = ROUTE53_PICKUP, PODS_READY
    rows += [
        [
            "after `dns.*`: Route 53's health check, then the record's TTL",
            f"{_s(pickup.low)}, nothing cached",
            f"{_s(pickup.typical)} + TTL",
            f"{_s(pickup.high)} + TTL",
            "",
            pickup.basis.value,
            pickup.source + f" TTL from Pulumi.dr.yaml dns.services ({ttls}): a resolver may"
            " answer from its cache that long after the switch; low: none had it cached.",
        ],
        [
            "after a cold `workloads.*`: pods ready",
            _s(pods.low),
            _s(pods.typical),
            _s(pods.high),
            "",
            pods.basis.value,
            pods.source,
        ],
        [
            "after a warm service's `workloads.<service>`: restarted pods ready",
            _s(WARM_RESTART.low),
            _s(WARM_RESTART.typical),
            _s(WARM_RESTART.high),
            "",
            WARM_RESTART.basis.value,
            WARM_RESTART.source,
        ],
    ]
    return rows


def _plan_rows(failover: FailoverPlan, typical: Timing) -> list[list[str]]:
    on_path = {s for link in typical.critical_path for s in link}
    return [
        [
            str(number_),
            f"`{step.id}`",
            ", ".join(f"`{d}`" for d in failover.depends[step.id]) or "-",
            _s(typical.seconds[step.id]),
            "yes" if step.id in on_path else "",
        ]
        for number_, layer in enumerate(failover.plan.layers, start=1)
        for step in layer
    ]


def _result_rows(timings: dict[Level, Timing]) -> list[list[str]]:
    def row(label: str, cell: Callable[[Timing], str]) -> list[str]:
        return [label, *(cell(timings[level]) for level in LEVELS)]

    return [
        row("one after another (sum of the steps)", lambda t: _minutes(t.sequential.total)),
        row(
            "layer by layer (a layer waits for every step of the one before)",
            lambda t: _minutes(t.batch.total),
        ),
        row(
            "ours, as `Executor` runs it (each step once its own dependencies end)",
            lambda t: _minutes(t.ours.total),
        ),
        row("**one after another / ours (executor)**", lambda t: f"**{t.ratio:.2f}x faster**"),
        row("critical path (DAG)", lambda t: path_text(t.critical_path)),
        row("plan + tails: last name and pod serving, ours", lambda t: _minutes(t.ours.serving)),
        row(
            "plan + tails: last name and pod serving, one after another",
            lambda t: _minutes(t.sequential.serving),
        ),
        row(
            "one after another / ours, plan + tails",
            lambda t: f"{t.sequential.serving / t.ours.serving:.2f}x faster",
        ),
    ]


def _measured_rows(
    timings: dict[Level, Timing], measured: Measured, scale: float
) -> list[list[str]]:
    def row(label: str, cell: Callable[[Level], str]) -> list[str]:
        return [label, *(cell(level) for level in LEVELS)]

    def overhead(level: Level) -> float:
        return Figure(measured.ours[level]).median - timings[level].ours.total * scale

    return [
        row("computed, ours (executor), scaled", lambda lv: _ms(timings[lv].ours.total * scale)),
        row(
            "measured, ours: the real `Executor` over the plan",
            lambda lv: _ms_spread(measured.ours[lv]),
        ),
        row("executor overhead (measured - computed, medians)", lambda lv: _ms(overhead(lv))),
        row(
            "computed, one after another, scaled",
            lambda lv: _ms(timings[lv].sequential.total * scale),
        ),
        row(
            "measured, one after another (the same steps, one per layer)",
            lambda lv: _ms_spread(measured.one_by_one[lv]),
        ),
        row(
            "**measured one after another / ours** (computed)",
            lambda lv: f"**{measured.ratio(lv):.2f}x** ({timings[lv].ratio:.2f}x)",
        ),
    ]


def _rto_rows(
    failover: FailoverPlan, timings: dict[Level, Timing]
) -> tuple[list[list[str]], dict[str, Any]]:
    config = failover.topology.config
    rows, found = [], {}
    for store, marks in store_marks(failover).items():
        data_class = config.stores[store].data_class
        rto = config.data_classes[data_class].rto
        ours = {level: ready_at(timings[level].ours, marks) for level in LEVELS}
        sequential = ready_at(timings["typical"].sequential, marks)
        within = {level: ours[level] <= rto.total_seconds() for level in LEVELS}
        rows.append(
            [
                f"`{store}`",
                data_class,
                format_duration(rto),
                f"{_s(ours['typical'])} ({_s(ours['low'])}-{_s(ours['high'])})",
                _s(sequential),
                ("yes" if within["typical"] else "**no**")
                + ("; at low and high too" if within["low"] and within["high"] else "")
                + ("; not at high" if within["typical"] and not within["high"] else "")
                + ("; yes at low" if within["low"] and not within["typical"] else ""),
            ]
        )
        found[store] = {
            "data_class": data_class,
            "rto_seconds": rto.total_seconds(),
            "after": marks,
            "ours": ours,
            "one_after_another_typical": sequential,
            "within_rto": within,
        }
    return rows, found


def measured_ready(timing_: Timing, finish: dict[str, float], marks: list[str]) -> float:
    """When ``marks`` had all ended in the measured run: steps as the executor recorded them,
    tails (Route 53, pods) added to their step's measured end less its poll share."""
    tail_step = {name: (step, secs) for step, (name, secs) in timing_.tail_seconds.items()}
    ends = []
    for mark in marks:
        if mark in tail_step:
            step, seconds = tail_step[mark]
            ends.append(finish[step] - timing_.noticing[step] + seconds)
        else:
            ends.append(finish[mark])
    return max(ends)


def _service_rows(
    failover: FailoverPlan, timings: dict[Level, Timing], measured: Measured
) -> tuple[list[list[str]], dict[str, Any]]:
    """Each service's critical path to serving in the target region, against its RTO."""
    config = failover.topology.config
    rows, found = [], {}
    for service, marks in service_marks(failover).items():
        entry = config.services[service]
        rto = config.data_classes[entry.data_class].rto
        ours = {level: ready_at(timings[level].ours, marks) for level in LEVELS}
        layered = ready_at(timings["typical"].batch, marks)
        within = {level: ours[level] <= rto.total_seconds() for level in LEVELS}
        path = path_to_marks(failover, timings["typical"], marks)
        ran = measured_ready(timings["typical"], measured.finish["typical"], marks)
        margin = rto.total_seconds() - ours["typical"]
        rows.append(
            [
                f"`{service}`" + (" (warm)" if entry.warm else ""),
                ", ".join(entry.stores),
                f"{entry.data_class}, {format_duration(rto)}",
                path_text(path),
                f"{_s(ours['typical'])} ({_s(ours['low'])}-{_s(ours['high'])})",
                _s(ran),
                _s(layered),
                ("yes" if within["typical"] else "**no**")
                + f", margin {_s(margin) if margin >= 0 else '-' + _s(-margin)}"
                + ("; not at high" if within["typical"] and not within["high"] else "")
                + ("; at high too" if within["high"] else ""),
            ]
        )
        found[service] = {
            "stores": entry.stores,
            "warm": entry.warm,
            "data_class": entry.data_class,
            "rto_seconds": rto.total_seconds(),
            "after": marks,
            "critical_path_typical": path,
            "ours": ours,
            "measured_executor_typical": ran,
            "layer_by_layer_typical": layered,
            "within_rto": within,
            "margin_seconds_typical": margin,
        }
    return rows, found


def failover_section(bench: Bench) -> Section:
    started = time.monotonic()
    options = bench.options
    scale = QUICK_SCALE if options.quick else SCALE
    scaled = f"1 s = {number(scale * 1000, 0)} ms"
    failover = failover_plan()
    poll = Runtime(aws=NoCalls(), kube=NoCalls()).poll_seconds
    timings = {level: timing(failover, level, poll) for level in LEVELS}
    typical = timings["typical"]
    journal = bench.workdir / "failover-journal"
    measured = measure(failover, timings, scale, options.runs, journal)
    rto_rows, stores = _rto_rows(failover, timings)
    missed = [store for store, item in stores.items() if not item["within_rto"]["typical"]]
    overheads = [
        _ms(Figure(measured.ours[level]).median - timings[level].ours.total * scale)
        for level in LEVELS
    ]
    gap = typical.batch.total - typical.dag.total
    service_rows, services = _service_rows(failover, timings, measured)
    late = [name for name, item in services.items() if not item["within_rto"]["typical"]]
    plan = failover.plan
    section = Section(
        key="failover",
        title="Failover critical path",
        summary=(
            f"The plan `build_plan` makes for an unplanned failover of the dr stack as"
            f" `Pulumi.dr.yaml` configures it ({plan.name}): {len(plan.steps)} steps in"
            f" {len(plan.layers)} layers, with the dependency edges the plan declares: each"
            " service's workloads and each name wait only for the stores they use (stack config"
            " `services`), and the executor starts each step once its own dependencies end. Each"
            " step is timed with AWS's published figure where there is one and labelled an"
            " assumption where there is none (table A). The steps are then summed one after"
            " another, run layer by layer (every step of a layer waiting for the whole layer"
            " before: the plan's shape until now), and run as `drkit.ops.executor.Executor` runs"
            " this plan (table C). Table F follows each service's critical path to serving in the"
            " dr region. Steps that wait for AWS poll every"
            f" {_s(poll)} (`Runtime.poll_seconds`): up to one poll more. Outside the plan, Route"
            " 53 still has to answer with the new record (health check, then the TTL) and the"
            " pods have to start: the 'plan + tails' rows add those. Last, the real `Executor`"
            f" runs the real plan with each step a sleep of its duration at {scaled},"
            " against the same sleeps one per layer (table D): the concurrency measured, not"
            " only computed; table F's measured column is each service's time to serving in"
            " that run, from the executor's own step records."
        ),
        tables=[
            Table(
                ["step", "low", "typical", "high", "our poll adds", "basis", "source"],
                _duration_rows(failover, poll),
                "A. Step durations (seconds of AWS time) and their sources",
            ),
            Table(
                ["layer", "step", "depends on", "typical, poll included", "on the critical path"],
                _plan_rows(failover, typical),
                "B. The plan as `build_plan` makes it",
            ),
            Table(
                ["", "low", "typical", "high"],
                _result_rows(timings),
                "C. Ours against the same steps one after another",
            ),
            Table(
                ["", "low", "typical", "high"],
                _measured_rows(timings, measured, scale),
                f"D. Measured: the real executor, each step a sleep at {scaled}"
                f" (median of {options.runs} runs, min-max)",
            ),
            Table(
                [
                    "store",
                    "data class",
                    "RTO",
                    "serving after, ours: typical (low-high)",
                    "one after another, typical",
                    "ours within the RTO (typical)",
                ],
                rto_rows,
                "E. Against the RTO of each store's data class (Pulumi.dr.yaml data_classes)",
            ),
            Table(
                [
                    "service",
                    "uses",
                    "objective (data class, RTO)",
                    "critical path to serving (typical)",
                    "serving after, ours: typical (low-high)",
                    "measured: the real executor, typical",
                    "layer by layer, typical",
                    "within the RTO (typical)",
                ],
                service_rows,
                "F. Per service (Pulumi.dr.yaml services): its workloads and names after its own"
                " stores",
            ),
        ],
        notes=[
            "A store serves again when its promotion has ended and Route 53 answers its name with"
            " the target (Aurora, ElastiCache); Kafka once the pods of the services of its data"
            " class run (they read the new bootstrap list as they start); Kubernetes state once"
            " every workload's pods run. A service serves once its pods run and every store it"
            " uses serves. A warm service's pods already run in dr (stack config `warm`): the"
            " failover restarts them (WARM_RESTART), a cold one's start from zero (PODS_READY)."
            " Stores without a standby (timeseries)"
            " are not moved by a failover: their RTO is a restore's.",
            "`invoke failover` stops its own RTO clock at `postcheck`: the 'ours, as `Executor`"
            " runs it' row. The 'plan + tails' rows go on until the last name and pod serve.",
            (
                "The whole plan ends at the same time layer by layer: `postcheck` waits for every"
                " step, and the slowest chain (Aurora, then its name) is the same either way. What"
                " the dependencies change is when each service serves: layer by layer, every"
                " service's workloads wait for the slowest promotion (table F's 'layer by layer'"
                " column)."
                if abs(gap) < 1e-9
                else f"At the typical figures the plan layer by layer takes {_s(gap)} longer than"
                " as the executor runs it: a layer waits for its slowest step even where the next"
                " layer's steps do not depend on it."
            ),
            "Executor overhead is what the real executor adds to the sleeps (a thread pool, an"
            " fsynced journal line per event): "
            + " / ".join(overheads)
            + " at the low / typical / high figures.",
        ]
        + (
            [
                "Not within the RTO at the typical figures: "
                + ", ".join(f"`{s}` ({stores[s]['data_class']})" for s in missed)
                + "."
            ]
            if missed
            else []
        )
        + (
            ["Services not within their RTO at the typical figures: " + ", ".join(late) + "."]
            if late
            else []
        ),
        headlines=[
            f"Failover (unplanned, the real plan): {_s(typical.ours.total)} along the critical"
            f" path with typical AWS figures vs {_s(typical.sequential.total)} with the same steps"
            f" one after another: {typical.ratio:.2f}x faster (low {timings['low'].ratio:.2f}x,"
            f" high {timings['high'].ratio:.2f}x); the real executor over the real plan, each"
            f" step a sleep at {scaled}, took {_ms_spread(measured.ours['typical'])} against"
            f" {_ms(typical.ours.total * scale)} computed. Per service, each after its own"
            " stores: "
            + "; ".join(
                f"{name} serving after {_s(item['ours']['typical'])} (RTO"
                f" {_s(item['rto_seconds'])}; layer by layer"
                f" {_s(item['layer_by_layer_typical'])})"
                for name, item in services.items()
            )
            + (
                f"; {EVENT_STREAM} after {_s(stores[EVENT_STREAM]['ours']['typical'])} against"
                f" {_s(stores[EVENT_STREAM]['rto_seconds'])}"
                if EVENT_STREAM in stores
                else ""
            )
            + "."
            + (f" Not within the RTO at typical figures: {', '.join(missed)}." if missed else "")
            + (f" Services not within their RTO: {', '.join(late)}." if late else ""),
        ],
        data={
            "plan": plan.name,
            "layers": [[s.id for s in layer] for layer in plan.layers],
            "depends": failover.depends,
            "poll_seconds": poll,
            "scale": scale,
            "durations": {kind: asdict(figure) for kind, figure in DURATIONS.items()},
            "tails": {
                "route53_pickup": asdict(ROUTE53_PICKUP),
                "pods_ready": asdict(PODS_READY),
                "warm_restart": asdict(WARM_RESTART),
            },
            "levels": {
                level: {
                    "seconds": t.seconds,
                    "tails": {
                        k: {"after": n, "seconds": v} for k, (n, v) in t.tail_seconds.items()
                    },
                    "one_after_another": t.sequential.total,
                    "executor": t.ours.total,
                    "layer_by_layer": t.batch.total,
                    "dag": t.dag.total,
                    "ratio": t.ratio,
                    "critical_path": t.critical_path,
                    "serving": {"ours": t.ours.serving, "one_after_another": t.sequential.serving},
                    "measured_ours": Figure(measured.ours[level]).as_dict(),
                    "measured_one_after_another": Figure(measured.one_by_one[level]).as_dict(),
                    "measured_ratio": measured.ratio(level),
                }
                for level, t in timings.items()
            },
            "stores": stores,
            "services": services,
            "eager": plan.eager,
        },
    )
    section.seconds = time.monotonic() - started
    return section
