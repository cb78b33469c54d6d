"""``invoke status --stack local``: which local region is primary, and each store's lag against
its RPO, read by the same functions as ``local.status`` and the failover (``drkit.local.lag``).

The primary region is where the stable names lead (``.drkit/local/names.json``, moved by a
failover), checked against what each store's server says it is. Lag is the standby region's, as
``local.status`` measures it: unknown (a miss) when it cannot be read, a MirrorMaker 2 that is not
running included, never 0. After a failover to dr nothing replicates back until a failback
re-seeds prod, so every replicated store is a miss: the stack has no standby.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from drkit.failover.status import StatusReport, StoreRow
from drkit.local.regions import DR, PROD
from stackmodels.config import ProtectionKind
from stackmodels.durations import format_duration


def local_status(project_dir: Path) -> StatusReport:
    from drkit.local.daemon import read_state
    from drkit.local.local_config import local_stack_config
    from drkit.local.names import read_names
    from drkit.local.status import stack_status

    state = read_state(project_dir)
    if state is None or state.get("status") != "ready":
        raise ValueError(
            f"--stack local: no local stack is up in {project_dir} "
            f"(status: {'down' if state is None else state.get('status')}); invoke local.up"
        )
    config = local_stack_config(project_dir)
    names = read_names(project_dir)
    regions = {name.region for name in names.values()}
    primary = regions.pop() if len(regions) == 1 else PROD
    source = "stable names" if not regions else "stable names disagree; assuming prod"
    standby = DR if primary == PROD else PROD
    report = StatusReport(primary, source, standby if DR in state["regions"] else "none")
    live = stack_status(state)["regions"]
    for store, entry in sorted(state["stores"][PROD].items()):
        row = StoreRow(store)
        protection = entry.get("protection")
        data_class = config.data_classes[config.stores[store].data_class]
        rpo = data_class.rpo.total_seconds()
        ours = live.get(primary, {}).get("stores", {}).get(store)
        if ours is not None and ours["role"] != "primary":
            report.notes.append(f"{store}: its {primary} server is {ours['role']}, not primary")
        if protection is None or protection == ProtectionKind.GITOPS.value:
            row.lag = "not replicated" if protection is None else f"{protection} (no lag)"
        elif primary != PROD:
            row.lag = f"no standby in {standby} (failed over) / {format_duration(rpo)}"
            row.lag_ok = False
        else:
            theirs: dict[str, Any] = live.get(DR, {}).get("stores", {}).get(store) or {}
            seconds = theirs.get("lag_seconds")
            note = (theirs.get("lag") or {}).get("note", "")
            shown = "unknown" if seconds is None else format_duration(seconds)
            row.lag = f"{shown} / {format_duration(rpo)}" + (f" ({note})" if note else "")
            row.lag_ok = seconds is not None and seconds <= rpo
            row.standby = theirs.get("role", "absent")
            row.standby_ok = row.standby == "standby"
        report.rows.append(row)
    return report
