"""The monthly drill against a provisioned stack (``invoke drill --stack dr``).

Nothing of the platform is broken: every store's newest backup is restored into a writable scratch
target, counted against its manifest, and removed; the targets are those of ``invoke verify``
(``drkit.ops.scratch``, one naming and cleanup scheme) with the drill's purpose, ``dr-test``, in
their names:

- PostgreSQL: a scratch database ``<database>_dr_test_<holder tag>``; on a dr stack, whose exported
  endpoint is the read-only secondary (locally the streaming standby) following prod's writer, on a
  throwaway server instead, never on either (``drkit.ops.scratch_postgres``);
- Kafka: topics renamed under the prefix ``dr-test.<holder tag>.``;
- Redis: a throwaway ``redis-server``;
- Kubernetes: the namespace ``<namespace>-dr-test``, the second seed's monthly drill
  (``aipx-dr-test``), with no pods allowed to run;

a killed drill's leftovers are removed by the next run or ``invoke verify --cleanup``; the time each
restore took is the drill's RTO, and the age of the newest backup when the drill ran is the data a
disaster at that moment would lose (RPO). The results go to the Pushgateway and CloudWatch, where
the dashboard's "Last drill" and "Drill RTO / RPO" panels read them. It is ``invoke verify`` with
measurements and publication, so both share one code path.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from drkit.context import OpsContext
from drkit.drill.metrics import push_drill_run
from drkit.ops.executor import Confirm, RunReport, terminal_confirm
from drkit.ops.run import RunOptions
from drkit.ops.scratch import DRILL
from drkit.ops.verify import PASSING, VerifyReport, VerifyRequest, run_verify
from drkit.reports import record_run, reports_root, run_dir
from stackmodels import metrics as names

DRILL_JOB = "drkit-drill"
CLOUDWATCH_NAMESPACE = "TradingDR/Drills"


@dataclass
class ComponentResult:
    component: str
    data_class: str
    passed: bool
    restore_seconds: float | None
    rto_objective_seconds: float
    backup_age_seconds: float | None
    rpo_objective_seconds: float
    detail: str

    @property
    def rto_met(self) -> bool:
        return self.restore_seconds is not None and (
            self.restore_seconds <= self.rto_objective_seconds
        )


@dataclass
class MonthlyDrillReport:
    stack: str
    started_at: str
    components: list[ComponentResult] = field(default_factory=list)
    published: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.components) and all(c.passed and c.rto_met for c in self.components)

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"ok": self.ok}, indent=2, default=str) + "\n"

    def to_markdown(self) -> str:
        lines = [
            f"# Monthly DR drill: {'passed' if self.ok else 'FAILED'}",
            "",
            f"Stack `{self.stack}`, {self.started_at}.",
            "",
            "| component | restored and counted | restore s / RTO s | backup age s / RPO s "
            "| detail |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in self.components:
            lines.append(
                f"| {c.component} | {'yes' if c.passed else 'NO'} | {c.restore_seconds} / "
                f"{c.rto_objective_seconds:.0f} | {c.backup_age_seconds} / "
                f"{c.rpo_objective_seconds:.0f} | {c.detail} |"
            )
        return "\n".join(lines) + "\n"


def component_results(
    ctx: OpsContext, run: RunReport, verify: VerifyReport
) -> list[ComponentResult]:
    seconds = {r.id: r.seconds for r in run.steps}
    results = []
    stores = sorted({c.subject for c in verify.checks if c.check == "test-restore"})
    for store in stores:
        checks = {c.check: c for c in verify.checks if c.subject == store}
        data_class = ctx.config.data_classes[ctx.config.stores[store].data_class]
        restore, freshness = checks.get("test-restore"), checks.get("freshness")
        age = freshness.figures.get("age_seconds") if freshness else None
        results.append(
            ComponentResult(
                component=store,
                data_class=ctx.config.stores[store].data_class,
                passed=all(c.status in PASSING for c in checks.values()),
                restore_seconds=seconds.get(f"test-restore.{store}"),
                rto_objective_seconds=data_class.rto.total_seconds(),
                backup_age_seconds=float(age) if age is not None else None,
                rpo_objective_seconds=data_class.rpo.total_seconds(),
                detail=restore.detail if restore else "",
            )
        )
    return results


def publish_to_gateway(results: list[ComponentResult], gateway: str) -> None:
    for result in results:
        registry = CollectorRegistry()
        labels = {names.COMPONENT_LABEL: result.component}
        values = {
            names.DRILL_LAST_RESULT: 1.0 if result.passed and result.rto_met else 0.0,
            names.DRILL_RTO_SECONDS: result.restore_seconds,
            names.DRILL_RPO_SECONDS: result.backup_age_seconds,
        }
        for metric, value in values.items():
            if value is None:
                continue
            gauge = Gauge(
                metric, f"{metric} of the last monthly drill", list(labels), registry=registry
            )
            gauge.labels(**labels).set(value)
        pushadd_to_gateway(
            gateway,
            job=DRILL_JOB,
            registry=registry,
            grouping_key={names.COMPONENT_LABEL: result.component},
            timeout=10,
        )


def publish_to_cloudwatch(results: list[ComponentResult], cloudwatch: Any) -> None:
    now = datetime.now(UTC)
    data = []
    for result in results:
        dimensions = [{"Name": names.COMPONENT_DIMENSION, "Value": result.component}]
        data.append(
            {
                "MetricName": "DrillResult",
                "Dimensions": dimensions,
                "Timestamp": now,
                "Value": 1.0 if result.passed and result.rto_met else 0.0,
                "Unit": "Count",
            }
        )
        if result.restore_seconds is not None:
            data.append(
                {
                    "MetricName": "DrillRestoreSeconds",
                    "Dimensions": dimensions,
                    "Timestamp": now,
                    "Value": result.restore_seconds,
                    "Unit": "Seconds",
                }
            )
    if data:
        cloudwatch.put_metric_data(Namespace=CLOUDWATCH_NAMESPACE, MetricData=data)


def run_monthly_drill(
    ctx: OpsContext,
    stores: list[str],
    options: RunOptions,
    project_dir: Path,
    out: TextIO,
    pushgateway: str | None = None,
    cloudwatch: bool = False,
    confirm: Confirm = terminal_confirm,
) -> MonthlyDrillReport:
    report = MonthlyDrillReport(ctx.stack, datetime.now(UTC).isoformat())
    out.write(f"== Monthly DR drill on stack {ctx.stack}: scratch restores, counts, clean up\n")
    run, verify = run_verify(
        ctx,
        VerifyRequest(stores=stores, test_restore=True, purpose=DRILL),
        options,
        project_dir,
        out,
        confirm,
    )
    if options.dry_run:
        return report
    report.components = component_results(ctx, run, verify)
    if pushgateway:
        publish_to_gateway(report.components, pushgateway)
        push_drill_run("restore", ctx.stack, report.ok, pushgateway)
        report.published.append(pushgateway)
    if cloudwatch:
        publish_to_cloudwatch(report.components, ctx.aws("cloudwatch"))
        report.published.append(f"cloudwatch {CLOUDWATCH_NAMESPACE}")
    root = reports_root(project_dir)
    directory = run_dir(root, run.run_id)  # beside the verify run's reports
    (directory / "drill-monthly.json").write_text(report.to_json())
    (directory / "drill-monthly.md").write_text(report.to_markdown())
    record_run(
        root,
        run.run_id,
        operation="drill monthly",
        stack=ctx.stack,
        outcome="passed" if report.ok else "failed",
        started_at=report.started_at,
        seconds=(datetime.now(UTC) - datetime.fromisoformat(report.started_at)).total_seconds(),
        journal=run.journal,
    )
    out.write(report.to_markdown())
    return report
