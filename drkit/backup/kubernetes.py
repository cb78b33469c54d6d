"""Kubernetes state: one namespace's objects, its custom resources' definitions and the namespace
itself, cleaned of server-set fields, in one archive; Secrets envelope-encrypted with KMS.

The seed's script runs ``kubectl get -o yaml`` kind by kind, at a different moment each, and writes
every Secret in plain text into a tarball. Here:

- Discovery finds every namespaced kind the server serves, custom resources included, and keeps
  those it can list, get and create, less what is derived or recreated (events, endpoints, leases,
  pods and ReplicaSets a controller owns; ``drkit.kubestate.clean``).
- Every list is read at one resourceVersion (``resourceVersionMatch=Exact``): etcd's revision is
  global, so the archive is the namespace at one instant, recorded with its wall-clock time.
- Lists are paginated (``limit``/``continue``) and streamed through the engine as they arrive,
  in restore priority order (``drkit.kubestate.order``): memory holds one page, whatever the size.
- Secrets: ``drkit.kubestate.sealing`` (one KMS data key per backup, AES-256-GCM per Secret); the
  manifest keeps only the KMS-encrypted key. No Secret value is written anywhere in plain text.
  With an isolated vault, the key is also wrapped under the isolated vault's key (the manifest's
  ``secrets.isolated``), so the isolated copy opens without prod's key; a wrap that fails drops
  the isolated copy, as any failure there does (``drkit.backup.engine``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from drkit.backup.engine import BackupSession, Capture
from drkit.kubestate.api import NAMESPACES, ApiClientFactory, KubeApi
from drkit.kubestate.archive import ARCHIVE_NAME, CONTENT, Header, Record
from drkit.kubestate.reader import PAGE_SIZE, NamespaceReader, Survey
from drkit.kubestate.sealing import DataKey, SealingError, generate_data_key, seal_secret
from stackmodels.sealing import KUBERNETES_SECRETS_PURPOSE, secrets_context

PURPOSE = KUBERNETES_SECRETS_PURPOSE
"""In the KMS encryption context of every data key, with the backup's prefix; the vault key's and
the job role's policies allow the direct KMS calls only for it (``stackmodels.sealing``)."""


class NamespaceNotFound(RuntimeError):
    """The namespace to back up does not exist on the server."""


@dataclass
class KubernetesHandler:
    """Backs up one namespace of the cluster ``api_client_factory`` reaches."""

    api_client_factory: ApiClientFactory
    namespace: str
    kms_key_id: str
    kms_client: Any
    page_size: int = PAGE_SIZE
    kind: str = "kubernetes"
    isolated_kms_client: Any = None
    """KMS in the isolated vault's account and region, with this job's credentials: the data key
    is wrapped there under the isolated vault's key (``Encrypt`` only). None: no isolated vault."""

    def backup(self, session: BackupSession) -> Capture:
        with self.api_client_factory() as client:
            api = KubeApi(client)
            server_version = str(api.version().get("gitVersion", "unknown"))
            if not api.exists(NAMESPACES.object_path(self.namespace)):
                raise NamespaceNotFound(f"namespace {self.namespace!r} not found on {api.server}")
            resource_version = api.current_resource_version(self.namespace)
            snapshot_time = datetime.now(UTC)
            reader = NamespaceReader(api, self.namespace, self.page_size)
            survey = reader.survey(resource_version)
            counts: Counter[str] = Counter()
            context = secrets_context(session.prefix)
            with generate_data_key(self.kms_client, self.kms_key_id, context) as key:
                wrapped = self._wrap_for_isolated(session, key)
                header = Header(self.namespace, resource_version, snapshot_time.isoformat())
                session.write_stream(
                    ARCHIVE_NAME,
                    self._stream(reader, survey, header, key, counts),
                    content=CONTENT,
                )
                envelope = key.envelope() | ({"isolated": wrapped} if wrapped else {})
        return Capture(
            source={
                "server": api.server,
                "namespace": self.namespace,
                "kinds": len(survey.resources),
                "custom_resource_definitions": sorted(survey.crds),
                "excluded_kinds": survey.excluded,
                "skipped_objects": dict(reader.skipped),
            },
            tool_versions={"kube-apiserver": server_version},
            consistent_point={
                "resource_version": resource_version,
                "snapshot_time": snapshot_time.isoformat(),
                "secrets": envelope | {"count": counts.get("secrets", 0)},
            },
            counts=dict(counts),
        )

    def _wrap_for_isolated(self, session: BackupSession, key: DataKey) -> dict[str, Any] | None:
        """The data key under the isolated vault's key, or None (no isolated copy, or it failed:
        then the isolated copy is dropped, as for a failed write there)."""
        isolated = session.isolated
        if isolated is None or self.isolated_kms_client is None:
            return None
        key_id = session.encryption_of(isolated).kms_key_id
        if not key_id:
            return None
        try:
            return key.wrap(self.isolated_kms_client, key_id)
        except SealingError as error:
            session.skip(isolated, f"the Secrets data key was not wrapped under its key: {error}")
            return None

    def _stream(
        self,
        reader: NamespaceReader,
        survey: Survey,
        header: Header,
        key: DataKey,
        counts: Counter[str],
    ) -> Iterator[bytes]:
        yield header.line()
        for page in reader.pages(survey, header.resource_version):
            lines = []
            for obj in page.objects:
                sealed = None
                if page.resource.key == "secrets":
                    obj, sealed = seal_secret(obj, key)
                lines.append(Record(page.resource, page.custom, obj, sealed).line())
            if lines:
                counts[page.resource.key] += len(lines)
                yield b"".join(lines)
