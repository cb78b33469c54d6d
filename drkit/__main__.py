"""The backup CronJobs' entrypoint: ``python -m drkit backup STORE``.

Everything comes from flags or, in Kubernetes, from the environment the CronJob sets: the stack
(DRKIT_STACK; required, no default), its confirmation (DRKIT_YES=true, the CronJob's ``--yes``:
every stack but ``local`` is production), the stack outputs file mounted from a ConfigMap
(DRKIT_OUTPUTS), the Pushgateway (DRKIT_PUSHGATEWAY) and the store's credentials
(DRKIT_<STORE>_USER/PASSWORD from its Secret).
Exit codes: 0 backup committed, 1 backup failed, 2 bad input or another run of the store holds
its lease (nothing was done; the message says who holds it and until when).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import NoReturn, TextIO

warnings.filterwarnings("ignore", category=FutureWarning, module="google.api_core")


class OneLineParser(argparse.ArgumentParser):
    """Bad arguments are a refusal like any other: one line, exit 2 (not the usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (python -m drkit backup --help)\n")


def parser() -> argparse.ArgumentParser:
    main = OneLineParser(prog="python -m drkit", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    backup = commands.add_parser("backup", help="take one backup of a store now")
    backup.add_argument("store")
    backup.add_argument("--stack", default="", help="required, or DRKIT_STACK")
    backup.add_argument(
        "--yes",
        action="store_true",
        default=os.environ.get("DRKIT_YES") == "true",
        help="do not ask for confirmation on a production stack (DRKIT_YES=true)",
    )
    backup.add_argument("--outputs", type=Path, default=os.environ.get("DRKIT_OUTPUTS") or None)
    backup.add_argument(
        "--project-dir", type=Path, default=Path(os.environ.get("DRKIT_PROJECT", "."))
    )
    backup.add_argument("--pushgateway", default=os.environ.get("DRKIT_PUSHGATEWAY") or None)
    backup.add_argument(
        "--cloudwatch", action="store_true", default=os.environ.get("DRKIT_CLOUDWATCH") == "true"
    )
    backup.add_argument(
        "--log-format", choices=["json", "text"], default=os.environ.get("DRKIT_LOG_FORMAT", "text")
    )
    backup.add_argument("--dry-run", action="store_true")
    backup.add_argument(
        "--wait",
        type=int,
        default=int(os.environ.get("DRKIT_WAIT_SECONDS", "0") or 0),
        metavar="SECONDS",
        help="when another run of the store holds its lease, wait up to this long (default: "
        "refuse at once, exit 2)",
    )
    backup.add_argument(
        "--jobs",
        default=os.environ.get("DRKIT_JOBS") or None,
        metavar="N",
        help="PostgreSQL: N streams in parallel inside one snapshot (backup format 2), or auto "
        "(the cores, within the server's free connections); default: one stream (DRKIT_JOBS)",
    )
    return main


def main(argv: list[str] | None = None) -> int:
    from drkit.backups import BackupRequest, take_backup
    from drkit.cli_errors import debug_enabled, describe
    from drkit.logs import JsonLines, configure_logging
    from drkit.stack_choice import choose, confirm

    arguments = parser().parse_args(argv)
    json_lines = arguments.log_format == "json"
    configure_logging(json_lines=json_lines)
    # In JSON mode what the run prints is JSON too: the pod's log is one object per line.
    out: TextIO = (
        JsonLines(sys.stdout, "drkit", store=arguments.store) if json_lines else sys.stdout
    )
    err: TextIO = (
        JsonLines(sys.stderr, "drkit", store=arguments.store) if json_lines else sys.stderr
    )
    try:
        choice = choose(arguments.stack, arguments.project_dir)
        out.write(choice.line() + "\n")
        confirm(choice, yes=arguments.yes, read_only=arguments.dry_run)
        request = BackupRequest(
            stack=choice.name,
            store=arguments.store,
            outputs=arguments.outputs,
            dry_run=arguments.dry_run,
            pushgateway=arguments.pushgateway,
            cloudwatch=arguments.cloudwatch,
            wait_seconds=arguments.wait,
            jobs=arguments.jobs,
        )
        return take_backup(request, arguments.project_dir, out, err)
    except Exception as error:
        if debug_enabled():
            raise
        code, line = describe(error)
        if json_lines:
            logging.getLogger("drkit").error("%s", line, extra={"store": arguments.store})
        else:
            sys.stderr.write(line + "\n")
        return code
    finally:
        if json_lines:
            out.close()
            err.close()


if __name__ == "__main__":
    from drkit.cli_errors import main_guarded

    sys.exit(main_guarded(main, sys.stderr.write))
