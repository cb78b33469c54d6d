"""The audit journal: every operation's events, in the audit bucket, as the operation runs.

One event is one small JSON object, written create-only (``If-None-Match: *``) under
``events/<YYYY>/<MM>/<DD>/<run id>/<sequence>.json`` and locked COMPLIANCE until its retention
(the audit retention class, ``StackConfig.journal_retention``) ends: no one, root included, can
delete or replace it before then. A run writes ``started`` first, its notable steps as they
finish (every plan step through ``drkit.ops.journal``, a backup's commit, a drill's scenarios),
and ``finished`` with the outcome last.

Each event says who (the STS caller identity; in a pod, the Kubernetes ServiceAccount of its
token; the OS user and host), what (operation, stack, arguments), when (ISO 8601 with offset),
the run id, the sequence and the outcome.

An audit write never stops the operation. When one fails (the bucket unreachable, the emulator
stopped, the region dark), that event and the rest of the run's go to a spool on this machine
(``$DRKIT_AUDIT_SPOOL``, else ``$XDG_STATE_HOME/drkit/audit-spool``, else
``~/.local/state/drkit/audit-spool``), one file per event under the bucket's own directory
(bucket names are global); the next run that journals in that bucket uploads them first, with
their original keys and locks.

A dry run writes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import getpass
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drkit.storage.objectstore import Encryption, ObjectExists, ObjectStoreError
from drkit.storage.s3 import S3Store

if TYPE_CHECKING:
    from drkit.context import OpsContext

log = logging.getLogger("drkit.audit")

PREFIX = "events/"
SCHEMA = 1
LOCK_MODE = "COMPLIANCE"
SPOOL_ENV = "DRKIT_AUDIT_SPOOL"
SERVICE_ACCOUNT_TOKENS = (
    Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
    Path("/var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
)
"""The pod's projected tokens: the ServiceAccount's own, and IRSA's (``sts.amazonaws.com``)."""
MAX_ARGUMENT_CHARS = 2000


# --- who ---------------------------------------------------------------------------------------


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def service_account(token_files: tuple[Path, ...] | None = None) -> str | None:
    """``system:serviceaccount:<namespace>:<name>`` from the pod's projected token (its ``sub``
    claim, read without verifying: it names who we are, it grants nothing here), or None
    outside a pod. ``AWS_WEB_IDENTITY_TOKEN_FILE`` (IRSA) is looked at first."""
    candidates = list(token_files if token_files is not None else SERVICE_ACCOUNT_TOKENS)
    web_identity = os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    if token_files is None and web_identity:
        candidates.insert(0, Path(web_identity))
    for path in candidates:
        try:
            token = path.read_text().strip()
        except OSError:
            continue
        subject = _jwt_subject(token)
        if subject:
            return subject
    return None


def _jwt_subject(token: str) -> str | None:
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError):
        return None
    subject = claims.get("sub") if isinstance(claims, dict) else None
    return str(subject) if subject else None


def caller_identity(ctx: OpsContext | None) -> dict[str, str]:
    """Who runs this: ``principal`` is the AWS caller (STS), else the ServiceAccount, else the
    OS user at the host; each source found is kept beside it."""
    who = {"user": os_user(), "host": socket.gethostname()}
    account = service_account()
    if account:
        who["kubernetes"] = account
    if ctx is not None:
        try:
            identity = ctx.aws("sts", ctx.outputs.audit_bucket.region).get_caller_identity()
            who["aws"] = str(identity["Arn"])
        except Exception as error:  # the identity is a field of the record, never a blocker
            who["aws_error"] = _one_line(error)
    who["principal"] = who.get("aws") or who.get("kubernetes") or f"{who['user']}@{who['host']}"
    return who


# --- where ---------------------------------------------------------------------------------------


def spool_root() -> Path:
    if os.environ.get(SPOOL_ENV):
        return Path(os.environ[SPOOL_ENV])
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "drkit" / "audit-spool"


def event_key(when: datetime, run_id: str, sequence: int) -> str:
    return f"{PREFIX}{when.astimezone(UTC):%Y/%m/%d}/{run_id}/{sequence:05d}.json"


def new_run_id(operation: str, now: datetime | None = None) -> str:
    """Unique per invocation: the time, the operation and a random tail (two runs in the same
    second never share a key)."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    slug = "".join(c if c.isalnum() else "-" for c in operation.lower()).strip("-")[:60]
    return f"{moment:%Y%m%dT%H%M%SZ}-{slug}-{secrets.token_hex(3)}"


@dataclass
class AuditSink:
    """The audit bucket (create-only, locked writes) and this machine's spool for it."""

    store: S3Store
    endpoint: str
    kms_key_id: str | None
    retention_days: int
    spool: Path
    offline: bool = False
    """Set by the first failed write: the rest of the run goes straight to the spool."""

    @classmethod
    def for_context(cls, ctx: OpsContext) -> AuditSink:
        bucket = ctx.outputs.audit_bucket
        endpoint = ctx.outputs.aws_endpoint_url or "aws"
        return cls(
            store=S3Store(ctx.aws("s3", bucket.region), bucket.name),
            endpoint=endpoint,
            kms_key_id=ctx.outputs.vault_key_arn,
            retention_days=ctx.config.journal_retention().days,
            spool=spool_root() / bucket.name,
        )

    def encryption(self, when: datetime) -> Encryption:
        return Encryption(
            kms_key_id=self.kms_key_id,
            lock_mode=LOCK_MODE,
            lock_until=when + timedelta(days=self.retention_days),
        )

    def write(self, key: str, when: datetime, body: bytes) -> bool:
        """Upload one event; on failure spool it. True when it is in the bucket."""
        if not self.offline:
            try:
                self._put(key, when, body)
                return True
            except ObjectStoreError as error:
                self.offline = True
                log.warning(
                    "audit event %s not written (%s); this run's events are spooled in %s "
                    "and uploaded by the next run",
                    key,
                    _one_line(error),
                    self.spool,
                )
        self._spool(key, body)
        return False

    def _put(self, key: str, when: datetime, body: bytes) -> None:
        # Create-only: ObjectExists is an earlier attempt that landed (its answer was lost).
        with contextlib.suppress(ObjectExists):
            self.store.put_bytes(
                key, body, self.encryption(when), metadata={"drkit-audit": str(SCHEMA)}
            )

    def _spool(self, key: str, body: bytes) -> None:
        try:
            self.spool.mkdir(parents=True, exist_ok=True)
            path = self.spool / key.removeprefix(PREFIX).replace("/", "__")
            partial = path.with_suffix(".partial")
            partial.write_bytes(body)
            partial.replace(path)
        except OSError as error:
            log.error("audit event %s lost: not written and not spooled (%s)", key, error)

    def pending(self) -> list[Path]:
        if not self.spool.is_dir():
            return []
        return sorted(self.spool.glob("*.json"))

    def drain(self) -> int:
        """Upload what earlier runs spooled for this bucket, oldest first; stop at the first
        failure (the bucket is still unreachable). Returns how many went up."""
        uploaded = 0
        for path in self.pending():
            key = PREFIX + path.name.replace("__", "/")
            try:
                body = path.read_bytes()
                when = datetime.fromisoformat(json.loads(body)["when"])
                self._put(key, when, body)
            except ObjectStoreError as error:
                log.debug("spooled audit events stay spooled: %s", _one_line(error))
                self.offline = True
                break
            except (OSError, ValueError, KeyError) as error:
                log.error("spooled audit event %s unreadable, left in place: %s", path, error)
                continue
            path.unlink(missing_ok=True)
            uploaded += 1
        return uploaded


# --- the trail of one run ---------------------------------------------------------------------


@dataclass
class AuditTrail:
    """The events of one run. ``record`` never raises: auditing never stops an operation."""

    sink: AuditSink | None
    operation: str
    stack: str
    arguments: dict[str, Any]
    run_id: str
    who: dict[str, str]
    outcome: str | None = None
    """Set by the operation when it ends without an exception but not in success (exit 1)."""
    written: int = 0
    spooled: int = 0
    uploaded_from_spool: int = 0
    context: dict[str, Any] = field(default_factory=dict)
    """Added to every later event (a plan run's journal id, once known)."""
    _sequence: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event: str, outcome: str, **detail: Any) -> None:
        if self.sink is None:
            return
        try:
            with self._lock:
                self._sequence += 1
                sequence = self._sequence
                when = datetime.now(UTC)
                body = {
                    "schema": SCHEMA,
                    "run_id": self.run_id,
                    "sequence": sequence,
                    "event": event,
                    "operation": self.operation,
                    "stack": self.stack,
                    "arguments": self.arguments,
                    "when": when.isoformat(),
                    "who": self.who,
                    "outcome": outcome,
                } | ({"detail": _jsonable(self.context | detail)} if self.context or detail else {})
                data = (json.dumps(body, default=str, sort_keys=True) + "\n").encode()
                if self.sink.write(event_key(when, self.run_id, sequence), when, data):
                    self.written += 1
                else:
                    self.spooled += 1
        except Exception as error:  # never let the journal stop the operation
            log.error("audit event %s of %s not recorded: %s", event, self.run_id, error)

    def step(self, name: str, outcome: str, **detail: Any) -> None:
        self.record("step", outcome, step=name, **detail)

    def note(self, **context: Any) -> None:
        self.context |= context

    def failed(self) -> None:
        self.outcome = "failed"


_active: list[AuditTrail] = []
_active_lock = threading.Lock()


def current() -> AuditTrail | None:
    """The trail of the operation this process runs (threads included: plan steps run in a
    pool, where context variables would not follow)."""
    with _active_lock:
        return _active[-1] if _active else None


def step(name: str, outcome: str, **detail: Any) -> None:
    """A notable step of whatever operation is running, if it is audited."""
    trail = current()
    if trail is not None:
        trail.step(name, outcome, **detail)


@contextlib.contextmanager
def audited(
    ctx: OpsContext | None,
    operation: str,
    arguments: Mapping[str, Any],
    *,
    dry_run: bool = False,
    stack: str | None = None,
) -> Iterator[AuditTrail | None]:
    """Journal ``operation`` on ``ctx``'s audit bucket: ``started`` now, ``finished`` with the
    outcome on the way out (``succeeded``, or ``failed``/``refused``/``interrupted`` as the
    exception says, or ``trail.outcome`` when the operation set it). A dry run, or an operation
    inside one already audited (``restore.all``'s restores), journals nothing of its own."""
    if dry_run or current() is not None:
        yield current() if not dry_run else None
        return
    sink = None
    if ctx is not None:
        try:
            sink = AuditSink.for_context(ctx)
        except Exception as error:
            log.error("audit journal unavailable for %s: %s", operation, _one_line(error))
    trail = AuditTrail(
        sink=sink,
        operation=operation,
        stack=stack or (ctx.stack if ctx is not None else "unknown"),
        arguments=_arguments(arguments),
        run_id=new_run_id(operation),
        who=caller_identity(ctx),
    )
    if sink is not None:
        with contextlib.suppress(Exception):
            trail.uploaded_from_spool = sink.drain()
    with _active_lock:
        _active.append(trail)
    trail.record("started", "started")
    outcome, error_text = "succeeded", None
    try:
        yield trail
    except BaseException as error:
        outcome, error_text = _outcome_of(error), _one_line(error)
        raise
    finally:
        with _active_lock:
            _active.remove(trail)
        final = trail.outcome if outcome == "succeeded" and trail.outcome else outcome
        extra = {"error": error_text} if error_text else {}
        trail.record("finished", final, **extra)
        if sink is not None and sink.offline:
            # One more try, so a blip mid-run leaves nothing behind; else the next run does it.
            sink.offline = False
            with contextlib.suppress(Exception):
                trail.uploaded_from_spool += sink.drain()


def _outcome_of(error: BaseException) -> str:
    from drkit.cli_errors import Ended, exit_code

    if isinstance(error, Ended):
        return OUTCOMES.get(error.code, "failed")
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, SystemExit):
        return "succeeded" if not error.code else "failed"
    if isinstance(error, Exception):
        return OUTCOMES.get(exit_code(error), "failed")
    return "failed"


OUTCOMES = {0: "succeeded", 1: "failed", 2: "refused"}
"""An exit code's outcome."""


def outcome_of_code(code: int) -> str:
    return OUTCOMES.get(code, "failed")


def journal_event(run_id: str, event: str, fields: Mapping[str, Any]) -> None:
    """A plan run's journal event, as a step of the audited operation: the run's start (its
    journal id noted on every later event), each finished step, the run's end."""
    trail = current()
    if trail is None:
        return
    if event == "run_started":
        trail.note(journal_run_id=run_id)
        trail.step("run", "started", plan=fields.get("plan"), resumed=fields.get("resumed"))
    elif event == "step_finished":
        trail.step(
            str(fields.get("step")),
            str(fields.get("outcome")),
            seconds=fields.get("seconds"),
            notes=fields.get("detail") or None,
        )
    elif event == "run_finished":
        trail.step("run", str(fields.get("status")), seconds=fields.get("seconds"))


def _arguments(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What the operation was asked, without empty flags; long values cut."""
    kept: dict[str, Any] = {}
    for name, value in arguments.items():
        if value in (None, "", [], (), False):
            continue
        value = _jsonable(value)
        text = json.dumps(value, default=str)
        kept[name] = value if len(text) <= MAX_ARGUMENT_CHARS else text[:MAX_ARGUMENT_CHARS] + "..."
    return kept


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:500]


# --- reading it back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListRequest:
    since: datetime | None = None
    operation: str | None = None


def parse_since(text: str, now: datetime | None = None) -> datetime | None:
    """``--since``: an ISO 8601 time (UTC if no zone) or an age such as ``90m``, ``6h``, ``7d``."""
    text = text.strip()
    if not text:
        return None
    now = now or datetime.now(UTC)
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    if text[-1:] in units and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: an ISO 8601 time (e.g. 2026-12-03T09:00:00+00:00) or an age "
            "such as 90m, 6h, 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_events(store: S3Store, request: ListRequest) -> list[dict[str, Any]]:
    """Every event at or after ``since`` (of ``operation``, if given), oldest first."""
    start_after = f"{PREFIX}{request.since.astimezone(UTC):%Y/%m/%d}" if request.since else ""
    events = []
    for item in store.list_objects(PREFIX, start_after=start_after):
        if not item.key.endswith(".json"):
            continue
        event = json.loads(store.get_bytes(item.key))
        event["key"] = item.key
        if request.since and datetime.fromisoformat(event["when"]) < request.since:
            continue
        if request.operation and event.get("operation") != request.operation:
            continue
        events.append(event)
    events.sort(key=lambda e: (e["when"], e["run_id"], e["sequence"]))
    return events


def to_text(events: list[dict[str, Any]]) -> str:
    if not events:
        return "no audit events\n"
    header = ("when", "run id", "seq", "operation", "stack", "event", "outcome", "who", "what")
    rows = [header]
    for event in events:
        detail = event.get("detail") or {}
        what = " ".join(f"{k}={v}" for k, v in (event.get("arguments") or {}).items())
        if event["event"] == "step":
            what = f"step {detail.get('step', '?')}"
        if detail.get("error"):
            what = f"{what} error: {detail['error']}".strip()
        rows.append(
            (
                event["when"],
                event["run_id"],
                str(event["sequence"]),
                event["operation"],
                event["stack"],
                event["event"],
                event["outcome"],
                str((event.get("who") or {}).get("principal", "?")),
                what[:120],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  ----")
    return "\n".join(line.rstrip() for line in lines) + "\n"


def to_json(events: list[dict[str, Any]]) -> str:
    return json.dumps(events, indent=2, sort_keys=True) + "\n"
