"""The names of the backup metrics, shared by the side that publishes them and the side that alarms.

The backup engine (``drkit.backup.metrics``) publishes them; the alarms, the Prometheus rules and
the dashboard (``components``) watch them. Both import these constants, so a renamed metric breaks
a test instead of silencing an alarm.
"""

from __future__ import annotations

# ---- CloudWatch -------------------------------------------------------------------------------

CLOUDWATCH_NAMESPACE = "TradingDR/Backups"
COMPONENT_DIMENSION = "Component"
"""Every datum carries ``Component=<store name>``."""

BACKUP_SUCCESS = "BackupSuccess"
"""1 on success, 0 on failure (unit Count): the freshness alarm sums it over a window."""
BACKUP_DURATION = "BackupDurationSeconds"
BACKUP_SIZE = "BackupSizeBytes"
BACKUP_LAST_SUCCESS = "BackupLastSuccessTimestamp"
BACKUP_COPIES = "BackupCopies"
"""Copies a successful run committed; below 3 on a three-copy stack: the isolated copy skipped."""

# ---- Prometheus (Pushgateway) -----------------------------------------------------------------

PROMETHEUS_JOB = "drkit-backup"
COMPONENT_LABEL = "component"
DATA_CLASS_LABEL = "data_class"

LAST_SUCCESS_TIMESTAMP = "backup_last_success_timestamp_seconds"
"""Pushed on success only, so a failure never hides an old success."""
LAST_RESULT = "backup_last_result"
"""1 if the last run succeeded, 0 if it failed."""
DURATION_SECONDS = "backup_duration_seconds"
SIZE_BYTES = "backup_size_bytes"
COPIES = "backup_copies"
"""Copies the last run committed (vault, mirror, isolated vault): 2 on a three-copy stack whose
isolated copy failed (a failed run) or was skipped (``isolated_copy: optional``)."""
COPIES_SKIPPED = "backup_copies_skipped"
"""Copies the last run was meant to write and did not (the isolated vault's): 0 when all were."""

# ---- Failover switch (published by the failover task, read by Route 53 through an alarm) -------

FAILOVER_NAMESPACE = "TradingDR/Failover"
PRIMARY_FENCED = "PrimaryFenced"
"""1 fences a service's primary (DNS answers with the secondary), 0 lifts the fence."""
SERVICE_DIMENSION = "Service"

# ---- Drills -----------------------------------------------------------------------------------

DRILL_LAST_RESULT = "drill_last_result"
"""1 if the last drill of a component restored and verified, 0 if not (the dashboard's row)."""
DRILL_RTO_SECONDS = "drill_rto_seconds"
DRILL_RPO_SECONDS = "drill_rpo_seconds"
DRILL_LAST_RUN_TIMESTAMP = "drill_last_run_timestamp_seconds"
"""Unix time a drill last finished, pushed by both drills (``DrillStale`` watches it)."""
DRILL_LABEL = "drill"
"""Which of the seed's tests a drill is: ``restore`` or ``failover``."""
DRILL_SCHEDULES_DAYS = {"restore": 7, "failover": 31}
"""The first seed's testing schedule: the backup restore test weekly, the failover test monthly
(31 days, so the longest month does not alert). ``invoke drill --stack dr`` (scratch restores of
every store) is the restore test; the local drill (disasters, failover, failback) the failover
test."""

# ---- Counting runs (the Pushgateway keeps the last push: drkit adds to what it holds) ----------

FAILURES_TOTAL = "backup_failures_total"
"""Failed runs per component, a counter: each run reads the gateway's value and pushes it + 1."""
RUNS_TOTAL = "backup_runs_total"
"""Every run per component, a counter (the denominator of the success rate)."""
RUN_DURATION = "backup_run_duration_seconds"
"""A histogram of run durations (``backup_duration_seconds`` keeps only the last run)."""
DURATION_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2700.0, 3600.0, 7200.0)

# ---- The first seed's performance targets ------------------------------------------------------

DURATION_TARGET_SECONDS = 1800
"""Backup duration: < 30 minutes per backup (a bucket boundary, so the histogram counts it)."""
SUCCESS_RATE_TARGET = 0.999
"""Backup success rate: 99.9 %, measured daily."""
