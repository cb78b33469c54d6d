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
