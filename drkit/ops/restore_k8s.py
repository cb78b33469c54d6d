"""``invoke restore.k8s``: a namespace's state from a backup into the same or another namespace,
as a plan with one step per restore priority (``drkit.kubestate.order``), each with its reason.

Refused before the plan is printed, having changed nothing: an unknown store or one of another
kind, a backup that cannot be found or read, an unknown ``--kinds`` entry, a data key KMS will not
decrypt with this stack's vault key (no ``kms:Decrypt``, or the backup was sealed under another
key), an API server that does not answer, a target namespace being deleted, and an archive whose
checksum does not match its manifest (it is read through once, before anything is created).

Each step restores its priority's objects and reports each one: restored, replaced (``--replace``),
skipped (exists), failed (with the API server's error). A failed object does not stop the others;
the last step checks that every object of the backup is in the target and fails the run if any
object failed or is missing, so a partial restore is never reported as a success. The per-object
outcomes are printed as they happen and written to ``reports/<run id>/restore-k8s-objects.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import AfterValidator, Field

from drkit.backup.manifest import Manifest, StoredObject
from drkit.context import OpsContext
from drkit.endpoints import kubernetes_client_factory
from drkit.kubestate.api import CRDS, NAMESPACES, KubeApi, KubeApiError
from drkit.kubestate.order import PRIORITIES, Priority, rank
from drkit.kubestate.sealing import DataKey, SealingError, decrypt_data_key
from drkit.ops.plan import FunctionStep, Plan, StepContext
from drkit.ops.selection import Chosen, check_present, choose, verify_checksums
from drkit.ops.verbs import RestoreEnv, RestoreRequest, RestoreVerb, comma_list
from drkit.recovery import RecoveryError
from drkit.reports import reports_root, run_dir
from drkit.restore.kubernetes import (
    KubernetesRestoreError,
    Ledger,
    ObjectOutcome,
    Target,
    archive_object,
    missing_objects,
    open_archive,
    restore_priority,
)
from drkit.restore.stream import IntegrityError
from drkit.targets import kubernetes_namespace
from stackmodels.config import StoreKind

OBJECTS_REPORT = "restore-k8s-objects.json"


def _namespace_name(name: str | None) -> str | None:
    return None if name is None else kubernetes_namespace(name)


class RestoreK8sRequest(RestoreRequest):
    store: str = "app-state"
    at: str | None = None
    backup: str | None = None
    namespace_to: Annotated[str | None, AfterValidator(_namespace_name)] = None
    """Restore into this namespace instead of the one backed up (created if missing)."""
    kinds: list[str] = Field(default_factory=list)
    """Only these kinds: ``configmaps``, ``deployments.apps``, ``Deployment``; default all."""
    replace: bool = False
    source: str = Field(default="vault", pattern="^(vault|mirror|isolated)$")

    @classmethod
    def from_flags(cls, **flags: Any) -> Self:
        """``--kinds`` given comma-separated."""
        return super().from_flags(**flags | {"kinds": comma_list(flags.get("kinds"))})


@dataclass
class Prepared:
    chosen: Chosen
    archive: StoredObject
    key: DataKey
    target: Target
    source_namespace: str
    selected: dict[str, dict[str, int]]
    """Priority name -> resource key -> objects in the backup, for the kinds restored."""
    ledger: Ledger = field(default_factory=Ledger)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def manifest(self) -> Manifest:
        return self.chosen.manifest

    def close(self) -> None:
        """Wipe the data key and close the API connection: call when the run is over."""
        self.key.close()
        self.target.api.client.close()


def prepare(
    ctx: OpsContext, request: RestoreK8sRequest, on_outcome: Callable[[ObjectOutcome], None] | None
) -> Prepared:
    """Resolve and check everything; raises ValueError subclasses naming the bad input."""
    config = ctx.store_config(request.store)
    if config.kind is not StoreKind.KUBERNETES:
        raise RecoveryError(f"store {request.store!r} is {config.kind.value}, not kubernetes")
    chosen = choose(ctx, request.store, request.at, request.backup, request.source)
    manifest = chosen.manifest
    try:
        archive = archive_object(manifest)
    except KubernetesRestoreError as error:
        raise RecoveryError(str(error)) from None
    check_present(chosen.objects, manifest, [archive])
    custom = set(manifest.source.get("custom_resource_definitions") or [])
    kinds = resolve_kinds(request.kinds, manifest.counts)
    selected = _selected(manifest.counts, custom, kinds)
    key = _open_data_key(ctx, manifest, request.source)
    api: KubeApi | None = None
    try:
        api = kubernetes_api(ctx, request.store)
        source_namespace = str(manifest.source.get("namespace") or ctx.outputs.k8s_namespace)
        if request.namespace_to is not None:
            kubernetes_namespace(request.namespace_to, source_namespace)
        namespace = request.namespace_to or source_namespace
        _refuse_terminating(api, namespace)
        try:
            verify_checksums(chosen.objects, [archive])
        except IntegrityError as error:
            raise RecoveryError(
                f"{error}. Restore another backup or from the other copy (--source). "
                "Nothing was changed."
            ) from None
    except BaseException:
        key.close()
        if api is not None:
            api.client.close()
        raise
    target = Target(api, source_namespace, namespace, request.replace, kinds)
    return Prepared(chosen, archive, key, target, source_namespace, selected, Ledger(on_outcome))


def resolve_kinds(requested: list[str], counts: dict[str, int]) -> frozenset[str] | None:
    """Resource keys for ``--kinds`` entries given as keys, plurals or kind names."""
    if not requested:
        return None
    keys = set()
    for entry in requested:
        wanted = entry.strip().lower()
        forms = {wanted, wanted + "s", wanted + "es"}
        if wanted.endswith("y"):
            forms.add(wanted[:-1] + "ies")
        matches = [k for k in counts if k in forms or k.split(".", 1)[0] in forms]
        if len(matches) != 1:
            what = "matches several kinds" if matches else "is not in this backup"
            raise RecoveryError(
                f"--kinds {entry}: {what}; the backup holds "
                f"{', '.join(f'{k} ({n})' for k, n in sorted(counts.items()))}"
            )
        keys.add(matches[0])
    return frozenset(keys)


def _selected(
    counts: dict[str, int], custom: set[str], kinds: frozenset[str] | None
) -> dict[str, dict[str, int]]:
    selected: dict[str, dict[str, int]] = {p.name: {} for p in PRIORITIES}
    wants_crds = kinds is not None and any(k in custom for k in kinds)
    for key, count in sorted(counts.items(), key=lambda kv: rank(kv[0], kv[0] in custom)):
        included = (
            kinds is None
            or key in kinds
            or key == NAMESPACES.key
            or (key == CRDS.key and wants_crds)
        )
        if included:
            priority = PRIORITIES[rank(key, key in custom)[0]]
            selected[priority.name][key] = count
    selected["namespace"].setdefault(NAMESPACES.key, 1)
    return {name: found for name, found in selected.items() if found}


def _open_data_key(ctx: OpsContext, manifest: Manifest, source: str = "vault") -> DataKey:
    """The backup's Secrets data key, opened by KMS: with this region's vault key, or from the
    isolated copy with the isolated vault's own key, as its reader role (prod's key not used)."""
    envelope = manifest.consistent_point.get("secrets")
    if not isinstance(envelope, dict):
        raise RecoveryError(
            f"backup {manifest.backup_id} records no Secrets data key: not a restorable "
            "Kubernetes-state backup"
        )
    try:
        if source == "isolated":
            wrapped = envelope.get("isolated")
            if not isinstance(wrapped, dict):
                raise RecoveryError(
                    f"backup {manifest.backup_id} has no Secrets data key under the isolated "
                    f"vault's key (its Secrets open only with {envelope.get('kms_key_id')}): "
                    "restore it with --source vault or mirror. Nothing was changed."
                )
            kms, key_arn = ctx.isolated_reader_kms()
            return decrypt_data_key(kms, wrapped, key_arn)
        return decrypt_data_key(ctx.aws("kms"), envelope, ctx.outputs.vault_key_arn)
    except SealingError as error:
        raise RecoveryError(f"{error}. Nothing was changed.") from None


def kubernetes_api(ctx: OpsContext, store: str) -> KubeApi:
    """A client of the store's API server that answered ``/version``, or a refusal."""
    try:
        client = kubernetes_client_factory(ctx, store)()
    except Exception as error:
        raise RecoveryError(f"no Kubernetes client for {store!r}: {error}") from None
    api = KubeApi(client)
    try:
        api.version()
    except Exception as error:
        client.close()
        raise RecoveryError(
            f"the Kubernetes API at {api.server} does not answer: {error}. Nothing was changed."
        ) from None
    return api


def _refuse_terminating(api: KubeApi, namespace: str) -> None:
    try:
        live = api.get(NAMESPACES.object_path(namespace))
    except KubeApiError as error:
        if error.status == 404:
            return
        raise RecoveryError(f"cannot read namespace {namespace!r}: {error.summary}") from None
    if (live.get("status") or {}).get("phase") == "Terminating":
        raise RecoveryError(
            f"namespace {namespace!r} is being deleted (Terminating): nothing can be created in "
            "it. Restore into another namespace with --namespace-to. Nothing was changed."
        )


def build_plan(
    ctx: OpsContext, request: RestoreK8sRequest, env: RestoreEnv
) -> tuple[Plan, Prepared]:
    """Each object's outcome is written to ``env.out`` as it happens, and all of them to
    ``reports/<run id>/restore-k8s-objects.json`` of ``env.project_dir``."""
    out = env.out

    def say(outcome: ObjectOutcome) -> None:
        if out is not None:
            out.write(outcome.line() + "\n")
            out.flush()

    prepared = prepare(ctx, request, say)
    manifest, target = prepared.manifest, prepared.target
    entry = prepared.chosen.entry
    reports = reports_root(env.project_dir)
    prepared.figures.update(figures(prepared))
    steps: list[FunctionStep] = []
    for priority in PRIORITIES:
        counts = prepared.selected.get(priority.name)
        if counts:
            steps.append(_restore_step(prepared, priority, counts, reports))
    total = sum(sum(c.values()) for c in prepared.selected.values())

    def verify(context: StepContext) -> None:
        _header, records = open_archive(prepared.chosen.objects, manifest)
        missing = missing_objects(records, target)
        failures = prepared.ledger.failures()
        problems = [f"{o.label}: {o.detail}" for o in failures[:10]]
        problems += [f"{label}: missing" for label in missing[:10]]
        if failures or missing:
            raise RuntimeError(
                f"{len(failures)} object(s) failed and {len(missing)} missing in namespace "
                f"{target.namespace!r}: " + "; ".join(problems)
            )
        context.note(f"all {total} objects of the backup are in namespace {target.namespace!r}")

    steps.append(
        FunctionStep(
            f"verify.{request.store}",
            f"check that each of the {total} objects is in namespace {target.namespace!r} "
            "and none failed",
            lambda c: None,
            confirm=verify,
            mutates=False,
        )
    )
    parameters: dict[str, Any] = request.model_dump() | {
        "stack": ctx.stack,
        "backup_id": entry.backup_id,
        "recovery_point": entry.recovery_point.isoformat(),
        "target": f"{target.api.server} namespace {target.namespace}",
    }
    plan = Plan.from_dependencies(
        f"restore k8s {request.store}",
        steps,
        {later.id: [earlier.id] for earlier, later in pairwise(steps)},
        parameters,
    )
    return plan, prepared


def _restore_step(
    prepared: Prepared, priority: Priority, counts: dict[str, int], reports: Path
) -> FunctionStep:
    target = prepared.target
    mode = "existing objects replaced" if target.replace else "existing objects skipped"
    what = ", ".join(f"{n} {key}" for key, n in counts.items())
    description = f"{what} -> namespace {target.namespace!r} ({mode}). Why now: {priority.reason}"

    def apply(context: StepContext) -> dict[str, int]:
        _header, records = open_archive(prepared.chosen.objects, prepared.manifest)
        try:
            restore_priority(records, priority.name, target, prepared.key, prepared.ledger)
        finally:
            records.close()
            prepared.figures.update(figures(prepared))
            write_objects_report(prepared.ledger, run_dir(reports, context.run_id) / OBJECTS_REPORT)
        result = prepared.ledger.counts(priority.name)
        context.note(", ".join(f"{n} {outcome}" for outcome, n in result.items() if n))
        for failure in prepared.ledger.failures(priority.name)[:5]:
            context.note(f"FAILED {failure.label}: {failure.detail}")
        return result

    return FunctionStep(f"restore.{priority.name}", description, apply)


def figures(prepared: Prepared, now: datetime | None = None) -> dict[str, Any]:
    entry = prepared.chosen.entry
    moment = now or datetime.now(UTC)
    counts = prepared.ledger.counts()
    return {
        "backup_id": entry.backup_id,
        "recovery_point": entry.recovery_point.isoformat(),
        "recovery_point_age_seconds": round((moment - entry.recovery_point).total_seconds(), 1),
        "source_namespace": prepared.source_namespace,
        "target_namespace": prepared.target.namespace,
        "objects_in_backup": sum(sum(c.values()) for c in prepared.selected.values()),
        **{f"objects_{outcome}": n for outcome, n in counts.items()},
    }


def write_objects_report(ledger: Ledger, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(ledger.as_dicts(), indent=2) + "\n")


VERB = RestoreVerb(RestoreK8sRequest, build_plan, "restore-k8s")
