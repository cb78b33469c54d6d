"""DNS failover driven through Route 53's data plane.

Route 53's control plane (zones, records, health checks) is served from us-east-1, the primary
region here. A failover that edits records (the seed's ``change-resource-record-sets``) fails in
exactly the outage it is for. So the records never change: each service name has a PRIMARY record
(the prod endpoint, with a health check) and a SECONDARY record (the dr endpoint), both created in
advance, and the switch is the health check's state, which Route 53's globally distributed data
plane evaluates and answers from:

- **the switch** (``FailoverSwitch``, dr stack, dr region): a CloudWatch alarm per service on
  ``TradingDR/Failover PrimaryFenced`` with ``Service=<name>``. ``invoke failover`` publishes 1 in
  the dr region (reachable while the primary is dark); the alarm goes to ALARM and, because missing
  data is ignored, stays there until 0 is published (failback). A high-resolution or extended
  statistic would not do: Route 53 reads standard-resolution alarms with basic statistics only.
- **the health check** (prod): type CLOUDWATCH_METRIC on that alarm, by its deterministic name in
  the dr region (``components.failover_naming``), so prod never reads dr. With insufficient data it
  keeps its last known status: a new alarm starts healthy, and a CloudWatch hiccup never flips it.
- **the records**: prod creates the private zone (associated with both regions' VPCs), the health
  checks and the PRIMARY records; dr creates the SECONDARY records in prod's zone, whose id it reads
  from prod's outputs. Their inputs do not depend on ``active_region``, so a ``pulumi up`` of the dr
  stack after a failover has nothing to change in Route 53 and never calls its API (tested).

The health check deliberately watches the switch only, not the endpoint: the endpoints are private
(Route 53's checkers cannot reach them), and a DNS flip without the store's promotion would send
writes to a read-only replica. The failover task promotes first, then fences.
"""

from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_aws as aws
from pydantic import Field

from components._common import PACKAGE, ComponentArgs, StrInput, child_opts, require_provider
from components.alarms import FAILOVER_SWITCH, AlarmSpec
from components.failover_naming import failover_switch_alarm_name

SWITCH_PERIOD = 60
"""Standard resolution: the only kind Route 53 health checks read."""


def switch_alarm(
    *, platform: str, service: str, namespace: str, metric: str, dimension: str
) -> AlarmSpec:
    """The alarm ``invoke failover`` forces by publishing ``metric`` = 1 (dr region)."""
    return AlarmSpec(
        key=f"switch-{service}",
        name=failover_switch_alarm_name(platform, service),
        description=(
            f"Fences the primary of {service}: in ALARM, Route 53 answers with the secondary. "
            f"Publish {namespace} {metric}=1 ({dimension}={service}) to fence, 0 to lift; "
            "missing data keeps the state."
        ),
        kind=FAILOVER_SWITCH,
        namespace=namespace,
        metric=metric,
        dimensions={dimension: service},
        statistic="Maximum",
        period=SWITCH_PERIOD,
        threshold=1,
        comparison="GreaterThanOrEqualToThreshold",
        treat_missing_data="ignore",
    )


class ServiceRecord(ComponentArgs):
    """A service name and the endpoint this stack's record answers with."""

    service: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
    fqdn: str = Field(min_length=3)
    target: StrInput
    ttl: int = Field(ge=5, le=300)


def failover_record(
    owner: pulumi.Resource,
    name: str,
    provider: pulumi.ProviderResource,
    record: ServiceRecord,
    *,
    zone_id: pulumi.Input[str],
    side: Literal["primary", "secondary"],
    region: str,
    health_check_id: pulumi.Input[str] | None = None,
) -> aws.route53.Record:
    """This side's CNAME of the service's failover pair, ``<name>-<service>-<side>``, set
    ``<side>-<region>``; the PRIMARY one answers while ``health_check_id`` is healthy."""
    return aws.route53.Record(
        f"{name}-{record.service}-{side}",
        zone_id=zone_id,
        name=record.fqdn,
        type="CNAME",
        ttl=record.ttl,
        records=[record.target],
        set_identifier=f"{side}-{region}",
        failover_routing_policies=[{"type": side.upper()}],
        health_check_id=health_check_id,
        opts=child_opts(owner, provider),
    )


class FailoverZoneArgs(ComponentArgs):
    """prod: the zone, each service's health check (on the dr switch) and PRIMARY record."""

    zone_name: str = Field(min_length=3)
    vpcs: dict[str, str] = Field(min_length=1)
    """Region -> VPC id the private zone answers in."""
    region: str
    switch_region: str
    """Where the switch alarms live (the dr region)."""
    switch_alarm_names: dict[str, str]
    """Service -> its switch alarm's name (deterministic, created by dr)."""
    records: list[ServiceRecord] = Field(min_length=1)
    protect: bool = True
    tags: dict[str, str] = Field(default_factory=dict)


class FailoverZone(pulumi.ComponentResource):
    zone_id: pulumi.Output[str]
    health_check_ids: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: FailoverZoneArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:dns:FailoverZone", name, None, opts)
        provider = require_provider(opts, "FailoverZone")
        missing = {r.service for r in args.records} - set(args.switch_alarm_names)
        if missing:
            raise ValueError(f"switch_alarm_names: no switch for services {sorted(missing)}")
        self.zone = aws.route53.Zone(
            f"{name}-zone",
            name=args.zone_name,
            comment="Trading DR: failover records, switched by health checks (data plane)",
            vpcs=[
                {"vpc_id": vpc, "vpc_region": region} for region, vpc in sorted(args.vpcs.items())
            ],
            force_destroy=False,
            tags=args.tags,
            opts=child_opts(self, provider, protect=args.protect),
        )
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
        self.records: dict[str, aws.route53.Record] = {}
        for record in args.records:
            check = aws.route53.HealthCheck(
                f"{name}-{record.service}-check",
                type="CLOUDWATCH_METRIC",
                cloudwatch_alarm_name=args.switch_alarm_names[record.service],
                cloudwatch_alarm_region=args.switch_region,
                insufficient_data_health_status="LastKnownStatus",
                reference_name=f"{record.service}-switch"[:64],
                tags={**args.tags, "Name": f"{record.fqdn} primary (fenced by the switch)"},
                opts=child_opts(self, provider),
            )
            self.health_checks[record.service] = check
            self.records[record.service] = failover_record(
                self,
                name,
                provider,
                record,
                zone_id=self.zone.zone_id,
                side="primary",
                region=args.region,
                health_check_id=check.id,
            )
        self.zone_id = self.zone.zone_id
        self.health_check_ids = {s: c.id for s, c in self.health_checks.items()}
        self.register_outputs({"zone_id": self.zone_id, "health_check_ids": self.health_check_ids})


class SecondaryRecordsArgs(ComponentArgs):
    """dr: each service's SECONDARY record, in prod's zone."""

    zone_id: StrInput
    region: str
    records: list[ServiceRecord] = Field(min_length=1)


class SecondaryRecords(pulumi.ComponentResource):
    def __init__(
        self, name: str, args: SecondaryRecordsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:dns:SecondaryRecords", name, None, opts)
        provider = require_provider(opts, "SecondaryRecords")
        self.records = {
            record.service: failover_record(
                self,
                name,
                provider,
                record,
                zone_id=args.zone_id,
                side="secondary",
                region=args.region,
            )
            for record in args.records
        }
        self.register_outputs({})
