"""What the invoke tasks call: load the dr stack, build the runtime, run, return the exit code.

Refusals (bad arguments, a stack that cannot drive a failover, a blocked planned preflight, a
journal of another plan) raise ValueError subclasses or ``PreflightBlocked`` before anything
changes; the task prints them and exits 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from drkit.context import LOCAL_STACK, OpsContext
from drkit.failover.clients import BotoClients, KubeconfigClients
from drkit.failover.operation import Outcome, request_from_journal, run_operation
from drkit.failover.request import FailoverRequest, Runtime
from drkit.failover.status import StatusReport, read_status
from drkit.ops.executor import Confirm, terminal_confirm
from drkit.ops.run import RunOptions, journal_parameters


def default_runtime(ctx: OpsContext, kubeconfig: str | None) -> Runtime:
    return Runtime(
        aws=BotoClients(ctx.outputs.aws_endpoint_url),
        kube=KubeconfigClients(Path(kubeconfig) if kubeconfig else None),
    )


def switch_regions(
    arguments: dict[str, Any],
    *,
    stack: str,
    outputs: str | None,
    kubeconfig: str | None,
    options: RunOptions,
    project_dir: Path,
    out: TextIO,
    confirm: Confirm = terminal_confirm,
    runtime: Runtime | None = None,
) -> Outcome:
    """``invoke failover`` / ``invoke failback``: a new run from ``arguments``, or ``--resume``
    with exactly the arguments the journaled run started with. ``--stack local`` switches the
    two-region local stack (``drkit.failover.local``) instead of AWS."""
    if options.resume:
        stack, request = request_from_journal(journal_parameters(project_dir, options.resume))
    else:
        request = FailoverRequest(**arguments)
    if stack == LOCAL_STACK:
        from drkit.failover.local import run_local

        return run_local(request, project_dir, out, options, confirm)
    ctx = OpsContext.load(stack, Path(outputs) if outputs else None, project_dir)
    return run_operation(
        ctx,
        request,
        runtime or default_runtime(ctx, kubeconfig),
        project_dir,
        out,
        options,
        confirm,
    )


def status(
    *,
    stack: str,
    outputs: str | None,
    kubeconfig: str | None,
    project_dir: Path,
    runtime: Runtime | None = None,
) -> StatusReport:
    if stack == LOCAL_STACK:
        from drkit.failover.local_status import local_status

        return local_status(project_dir)
    ctx = OpsContext.load(stack, Path(outputs) if outputs else None, project_dir)
    return read_status(ctx, runtime or default_runtime(ctx, kubeconfig), project_dir)
