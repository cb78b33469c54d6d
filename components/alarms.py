"""CloudWatch alarms and the alert topic they notify.

Two kinds of alarm protect each data class, because two things can fail:

- **freshness** (per store): the backup engine publishes ``BackupSuccess`` (1 or 0) per run with
  ``Component=<store>``. The alarm sums it over a window and breaches when the sum is below 1, and
  missing data breaches too (a CronJob that never starts publishes nothing). The window is
  ``max(RPO, longest gap of the store's schedule)``: a store backed up at least as often as its
  RPO alarms when the RPO is broken; a store whose schedule is slower than its RPO (a continuous
  mechanism covers the RPO between backups) alarms when a scheduled backup is missed.
- **replication lag** (per continuous mechanism): Aurora global replication lag, the MSK
  Replicator's latency and the ElastiCache global datastore's lag against the RPO of the store's
  data class, and the vault's S3 replication latency (the RTC threshold) and failed operations.

CloudWatch's rules are checked when an alarm's args are built, not at deploy time: a period is 10,
20, 30 or a multiple of 60 seconds; period x evaluation periods is at most one day when the period
is under an hour, at most seven days otherwise. A window longer than a day is split into hourly or
daily periods that must all breach (``datapoints_to_alarm`` = evaluation periods), which is the
same condition: no success anywhere in the window.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal, Self

import pulumi
import pulumi_aws as aws
from pydantic import Field, model_validator

from components._common import (
    PACKAGE,
    ComponentArgs,
    KmsKeyArnInput,
    StrInput,
    child_opts,
    policy_document,
    require_provider,
    to_json,
)

TAG_ALARM = "trading-dr:alarm"
TAG_STORE = "trading-dr:store"
TAG_DATA_CLASS = "trading-dr:data-class"
FRESHNESS = "backup-freshness"
REPLICATION_LAG = "replication-lag"
REPLICATION_FAILURES = "replication-failures"
FAILOVER_SWITCH = "failover-switch"

ONE_DAY = 86_400
SEVEN_DAYS = 604_800
ONE_HOUR = 3_600
Comparison = Literal[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
MissingData = Literal["breaching", "notBreaching", "ignore", "missing"]


def freshness_window(rpo: timedelta, schedule_gap: timedelta) -> timedelta:
    """How long without a successful backup before the store is stale (see the module doc)."""
    return max(rpo, schedule_gap)


def periods_for(window: timedelta) -> tuple[int, int]:
    """(period seconds, evaluation periods) covering ``window`` exactly, by CloudWatch's rules.

    Standard-resolution metrics (the engine's) need multiples of 60; the window is rounded up to
    the next minute. Up to a day: one period. Longer: hourly periods (daily ones past a week's
    worth of hours is not allowed), all of which must breach.
    """
    seconds = int(window.total_seconds())
    seconds = -(-seconds // 60) * 60
    if seconds <= ONE_DAY:
        return seconds, 1
    if seconds > SEVEN_DAYS:
        raise ValueError(
            f"a window of {seconds}s is longer than CloudWatch's 7-day evaluation limit; "
            "back the store up at least weekly"
        )
    period = ONE_DAY if seconds % ONE_DAY == 0 else ONE_HOUR
    return period, -(-seconds // period)


class MetricQuery(ComponentArgs):
    """One metric of a metric-math alarm (``return_data`` False) or the expression (True)."""

    id: str = Field(pattern=r"^[a-z][a-zA-Z0-9_]*$")
    expression: str | None = None
    namespace: str | None = None
    metric: str | None = None
    dimensions: dict[str, StrInput] = Field(default_factory=dict)
    statistic: str | None = None
    return_data: bool = False


class AlarmSpec(ComponentArgs):
    """One CloudWatch metric alarm, checked against CloudWatch's rules at construction."""

    key: str = Field(pattern=r"^[a-z0-9-]+$")
    """Stable key: the child resource's suffix and the ``alarms`` output's key."""
    name: str = Field(min_length=1, max_length=255)
    description: str
    kind: Literal["backup-freshness", "replication-lag", "replication-failures", "failover-switch"]
    namespace: str | None = None
    metric: str | None = None
    dimensions: dict[str, StrInput] = Field(default_factory=dict)
    statistic: Literal["Sum", "Maximum", "Minimum", "Average", "SampleCount"] | None = None
    queries: list[MetricQuery] = Field(default_factory=list)
    period: int = Field(ge=10)
    evaluation_periods: int = Field(default=1, ge=1)
    datapoints_to_alarm: int | None = None
    threshold: float
    comparison: Comparison
    treat_missing_data: MissingData
    actions_enabled: bool = True
    store: str | None = None
    data_class: str | None = None

    @model_validator(mode="after")
    def _cloudwatch_rules(self) -> Self:
        if self.period not in (10, 20, 30) and self.period % 60:
            raise ValueError(f"period: {self.period} is not 10, 20, 30 or a multiple of 60")
        total = self.period * self.evaluation_periods
        limit = ONE_DAY if self.period < ONE_HOUR else SEVEN_DAYS
        if total > limit:
            raise ValueError(
                f"evaluation_periods: {self.evaluation_periods} x period {self.period}s = {total}s "
                f"exceeds CloudWatch's {limit}s for this period"
            )
        datapoints = self.datapoints_to_alarm or self.evaluation_periods
        if datapoints > self.evaluation_periods:
            raise ValueError("datapoints_to_alarm: more than evaluation_periods")
        single = self.metric is not None and self.namespace is not None
        if single == bool(self.queries):
            raise ValueError("metric: give a namespace and metric, or metric-math queries")
        if single and self.statistic is None:
            raise ValueError("statistic: a single-metric alarm needs one")
        if self.queries and sum(q.return_data for q in self.queries) != 1:
            raise ValueError("queries: exactly one query returns the alarm's data")
        return self

    def tags(self) -> dict[str, str]:
        tags: dict[str, str] = {TAG_ALARM: self.kind}
        if self.store:
            tags[TAG_STORE] = self.store
        if self.data_class:
            tags[TAG_DATA_CLASS] = self.data_class
        return tags


def freshness_alarm(
    *,
    platform: str,
    store: str,
    data_class: str,
    rpo: timedelta,
    schedule_gap: timedelta,
    namespace: str,
    metric: str,
    dimension: str,
    active: bool,
) -> AlarmSpec:
    """The freshness alarm of one store (see the module docstring for the window)."""
    window = freshness_window(rpo, schedule_gap)
    period, evaluations = periods_for(window)
    return AlarmSpec(
        key=f"freshness-{store}",
        name=f"{platform}-backup-freshness-{store}",
        description=(
            f"No successful backup of {store} ({data_class}) in {period * evaluations}s: the "
            f"longer of its RPO ({int(rpo.total_seconds())}s) and its schedule's longest gap "
            f"({int(schedule_gap.total_seconds())}s). Missing data breaches."
        ),
        kind=FRESHNESS,
        namespace=namespace,
        metric=metric,
        dimensions={dimension: store},
        statistic="Sum",
        period=period,
        evaluation_periods=evaluations,
        datapoints_to_alarm=evaluations,
        threshold=1,
        comparison="LessThanThreshold",
        treat_missing_data="breaching",
        actions_enabled=active,
        store=store,
        data_class=data_class,
    )


class AlertTopicArgs(ComponentArgs):
    topic_name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,256}$")
    account_id: str = Field(pattern=r"^\d{12}$")
    kms_key_arn: KmsKeyArnInput
    emails: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)


def alert_topic_policy(topic_arn: str, account_id: str) -> dict[str, Any]:
    """CloudWatch alarms and AWS Budgets of this account may publish, over TLS only."""
    return policy_document(
        [
            {
                "Sid": "AlarmsAndBudgetsOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": ["budgets.amazonaws.com", "cloudwatch.amazonaws.com"]},
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sns:Publish",
                "Resource": topic_arn,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
        ]
    )


class AlertTopic(pulumi.ComponentResource):
    """The region's SNS topic: encrypted with the data key, published to by CloudWatch alarms
    and AWS Budgets of this account only, with an email subscription per address."""

    arn: pulumi.Output[str]

    def __init__(
        self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:alerts:AlertTopic", name, None, opts)
        provider = require_provider(opts, "AlertTopic")
        self.topic = aws.sns.Topic(
            f"{name}-topic",
            name=args.topic_name,
            display_name="Trading DR alerts",
            kms_master_key_id=args.kms_key_arn,
            tags=args.tags,
            opts=child_opts(self, provider),
        )
        self.policy = aws.sns.TopicPolicy(
            f"{name}-policy",
            arn=self.topic.arn,
            policy=self.topic.arn.apply(
                lambda arn: to_json(alert_topic_policy(arn, args.account_id))
            ),
            opts=child_opts(self, provider),
        )
        self.subscriptions = [
            aws.sns.TopicSubscription(
                f"{name}-email-{index}",
                topic=self.topic.arn,
                protocol="email",
                endpoint=email,
                opts=child_opts(self, provider),
            )
            for index, email in enumerate(args.emails)
        ]
        self.arn = self.topic.arn
        self.register_outputs({"arn": self.arn})


class MetricAlarmsArgs(ComponentArgs):
    alarms: list[AlarmSpec] = Field(min_length=1)
    topic_arn: StrInput
    """Notified on ALARM and on OK (a recovery is news too)."""
    tags: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        keys = [a.key for a in self.alarms]
        names = [a.name for a in self.alarms]
        if len(set(keys)) != len(keys) or len(set(names)) != len(names):
            raise ValueError(f"alarms: keys and names must be unique, got {keys}")
        return self


class MetricAlarms(pulumi.ComponentResource):
    """A set of CloudWatch alarms, each notifying the alert topic."""

    def __init__(
        self, name: str, args: MetricAlarmsArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{PACKAGE}:alerts:MetricAlarms", name, None, opts)
        provider = require_provider(opts, "MetricAlarms")
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in args.alarms:
            queries: list[aws.cloudwatch.MetricAlarmMetricQueryArgsDict] = []
            for query in spec.queries:
                if query.expression is not None:
                    queries.append(
                        {
                            "id": query.id,
                            "expression": query.expression,
                            "return_data": query.return_data,
                        }
                    )
                else:
                    queries.append(
                        {
                            "id": query.id,
                            "return_data": query.return_data,
                            "metric": {
                                "namespace": query.namespace or "",
                                "metric_name": query.metric or "",
                                "dimensions": query.dimensions,
                                "stat": query.statistic or "Maximum",
                                "period": spec.period,
                            },
                        }
                    )
            single = not queries
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key}",
                name=spec.name,
                alarm_description=spec.description,
                namespace=spec.namespace if single else None,
                metric_name=spec.metric if single else None,
                dimensions=spec.dimensions if single and spec.dimensions else None,
                statistic=spec.statistic if single else None,
                period=spec.period if single else None,
                metric_queries=queries or None,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints_to_alarm or spec.evaluation_periods,
                threshold=spec.threshold,
                comparison_operator=spec.comparison,
                treat_missing_data=spec.treat_missing_data,
                actions_enabled=spec.actions_enabled,
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                tags={**args.tags, **spec.tags()},
                opts=child_opts(self, provider),
            )
        self.names = {key: alarm.name for key, alarm in self.alarms.items()}
        self.register_outputs({"names": self.names})
