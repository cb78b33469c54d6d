"""The backup CronJob's pod, executed as a process against the local stack's real servers.

No Docker engine or kubelet runs here, so this is the closest real thing. The manifests come from
the real program for prod's config (the unit tests' Pulumi-mocks harness), and for ``trading-db``
(PostgreSQL), ``event-stream`` (Kafka) and ``session-cache`` (Redis) the container runs as the
kubelet would run it:

- argv: the image's ``ENTRYPOINT`` (read from the Dockerfile: ``python -m drkit``) and the
  container's ``args``; environment: the image's ``ENV`` overridden by the container's ``env``, each
  ``secretKeyRef`` resolved from the Secrets as the sync fills them (``<store>-backup-credentials``
  with ``username`` and ``password``). A reference that nothing resolves fails the test: it would
  keep the pod from starting. Working directory and ``HOME`` are the image's ``/tmp``;
- the ConfigMap's items are written, with the volume's file mode, to a read-only directory
  standing in for ``/etc/drkit``; ``Pulumi.prod.yaml`` is exactly what the ConfigMap holds.

A run must exit 0 and commit one backup (its manifest in the vault and in the catalog, counting
what the store holds), log nothing but JSON lines naming the store on stdout and stderr, push the
four metrics the alerts read to the Pushgateway and CloudWatch, leave the ConfigMap's directory as
it was and the ``/tmp`` stand-in empty (the engine streams). With a wrong password in the Secret
the pod exits 1, commits nothing and reports ``backup_last_result`` 0, the last success kept.

What differs from the pod, and why:

- ``outputs.json`` is the local stack's (the ``project`` fixtures' ``--stack local``), not prod's:
  the local servers' endpoints and the emulators' URLs (``aws_endpoint_url``, ``gcs_endpoint_url``:
  with them drkit's AWS clients use the emulator with its dummy keys, the GCS client is anonymous);
- ``/etc/drkit`` in the env points to that directory; ``/tmp`` (the emptyDir, so also ``HOME`` and
  the working directory) is a directory of the test's, also given as ``TMPDIR``, since this
  machine's ``/tmp`` cannot be the pod's;
- IRSA: the EKS webhook's web-identity token and role become the emulator's dummy keys in the
  default chain, with the region the webhook sets;
- ``DRKIT_PUSHGATEWAY`` is the local Pushgateway; ``PATH`` has this environment's ``bin`` where
  the image has ``/opt/drkit/bin``; ``GOOGLE_APPLICATION_CREDENTIALS`` is left as declared (the
  Secret is not mounted; the emulator's client never opens it);
- the user: the pod runs as UID/GID 10001, which cannot be reproduced here (the interpreter lives
  under a directory only its owner may enter). Run as root, the process gets what the rest of the
  securityContext gives: no capabilities and ``no_new_privs`` (``setpriv``), so root's override
  of file permissions is gone, and, where a private mount namespace can be made, a root filesystem
  that is really read-only with only the ``/tmp`` stand-in writable (``readOnlyRootFilesystem``;
  stricter than the pod for a tool that ignores ``TMPDIR`` and writes to ``/tmp`` itself). Run as
  another user, file permissions alone keep the read-only directories read-only;
- the resource limits and the network policy are not applied.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client.parser import text_string_to_metric_families

from components.backup_cronjobs import CONFIG_DIR
from drkit.backup.kafka import reader
from drkit.backup.manifest import MANIFEST_NAME, Manifest
from drkit.context import Credentials, OpsContext
from drkit.endpoints import postgres_source
from drkit.local.pushgateway import LocalPushgateway
from drkit.local.redis import LocalRedis
from drkit.local.s3 import DUMMY_ACCESS_KEY, DUMMY_SECRET_KEY, LocalAws
from drkit.recovery import BackupIndex, RecoveryError
from drkit.seed.postgres import TradingDataSize, seed_trading_database, table_counts
from infra.kubernetes import credentials_secret_name
from stackmodels import StackOutputs
from tests.integration.ops_helpers import create_topics, delete_topics, produce
from tests.unit.test_dockerfile import DOCKERFILE, Instruction, instructions

# The manifests come from the unit tests' Pulumi-mocks harness (tests/unit/infra is no package).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "infra"))
from backup_jobs_harness import manifests, run_backup_jobs

pytestmark = pytest.mark.integration

STACK = "prod"
METRICS = {
    "backup_last_success_timestamp_seconds",
    "backup_last_result",
    "backup_size_bytes",
    "backup_duration_seconds",
}
CLOUDWATCH_NAMESPACE = "TradingDR/Backups"
CLOUDWATCH_METRICS = {
    "BackupSuccess",
    "BackupSizeBytes",
    "BackupDurationSeconds",
    "BackupLastSuccessTimestamp",
}


# ---- the pod as declared, the image as built --------------------------------------------------


@dataclass(frozen=True)
class Declared:
    cronjobs: dict[str, dict[str, Any]]
    """By store (the instance label)."""
    config_map: dict[str, Any]


@pytest.fixture(scope="module")
def declared() -> Declared:
    found = manifests(run_backup_jobs(STACK))
    cronjobs = {
        m["metadata"]["labels"]["app.kubernetes.io/instance"]: m
        for m in found
        if m["kind"] == "CronJob"
    }
    [config_map] = [m for m in found if m["kind"] == "ConfigMap"]
    return Declared(cronjobs, config_map)


def pod_spec(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container_of(cronjob: dict[str, Any]) -> dict[str, Any]:
    [only] = pod_spec(cronjob)["containers"]
    assert isinstance(only, dict)
    return only


def volume_at(cronjob: dict[str, Any], mount_path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the container's volumeMount at ``mount_path``, the pod's volume it mounts)."""
    [mount] = [m for m in container_of(cronjob)["volumeMounts"] if m["mountPath"] == mount_path]
    [volume] = [v for v in pod_spec(cronjob)["volumes"] if v["name"] == mount["name"]]
    return mount, volume


@dataclass(frozen=True)
class Image:
    """What the Dockerfile's last stage gives a container that does not override it."""

    entrypoint: list[str]
    cmd: list[str]
    env: dict[str, str]
    workdir: str


def image_of(dockerfile: list[Instruction]) -> Image:
    """The last stage, with the ENV of the stages it is built FROM (by alias), in order."""
    stages: dict[int, list[Instruction]] = {}
    for instruction in dockerfile:
        stages.setdefault(instruction.stage, []).append(instruction)
    aliases = {}
    for number, body in stages.items():
        words = body[0].arguments.split()
        if len(words) == 3 and words[1].upper() == "AS":
            aliases[words[2]] = number
    chain = [max(stages)]
    while (parent := stages[chain[0]][0].arguments.split()[0]) in aliases:
        chain.insert(0, aliases[parent])
    env: dict[str, str] = {}
    entrypoint: list[str] = []
    cmd: list[str] = []
    workdir = "/"
    for instruction in (i for number in chain for i in stages[number]):
        if instruction.keyword == "ENV":
            for pair in instruction.arguments.split():
                name, _, value = pair.partition("=")
                env[name] = value
        elif instruction.keyword == "ENTRYPOINT":
            entrypoint = json.loads(instruction.arguments)
        elif instruction.keyword == "CMD":
            cmd = json.loads(instruction.arguments)
        elif instruction.keyword == "WORKDIR":
            workdir = instruction.arguments
    return Image(entrypoint, cmd, env, workdir)


@pytest.fixture(scope="module")
def image() -> Image:
    return image_of(instructions(DOCKERFILE.read_text()))


# ---- how the process is confined --------------------------------------------------------------

DROP_ALL_CAPABILITIES = [
    "setpriv",
    "--no-new-privs",  # allowPrivilegeEscalation: false
    "--inh-caps=-all",
    "--ambient-caps=-all",
    "--bounding-set=-all",  # capabilities: drop: [ALL]
    "--",
]
PRIVATE_MOUNTS = ["unshare", "--mount", "--propagation", "private", "--"]
# Run in a private mount namespace only: the writable directory gets a mount of its own, then the
# root mount is made read-only for this namespace alone ("bind": the filesystem itself is not).
READ_ONLY_ROOT = 'mount --bind "$1" "$1" && mount -o remount,bind,ro / && shift && exec "$@"'


@dataclass(frozen=True)
class Confinement:
    """How much of the container's securityContext this machine can apply (module docstring)."""

    drops_capabilities: bool
    read_only_root: bool

    def command(self, writable: Path, argv: list[str]) -> list[str]:
        if self.drops_capabilities:
            argv = DROP_ALL_CAPABILITIES + argv
        if self.read_only_root:
            argv = [*PRIVATE_MOUNTS, "sh", "-c", READ_ONLY_ROOT, "sh", str(writable), *argv]
        return argv


def succeeds(command: list[str]) -> bool:
    try:
        return subprocess.run(command, capture_output=True, check=False).returncode == 0
    except OSError:
        return False


@pytest.fixture(scope="module")
def confinement(declared: Declared) -> Confinement:
    for cronjob in declared.cronjobs.values():  # what the confinement stands for
        assert container_of(cronjob)["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        }
    if os.geteuid() != 0:
        return Confinement(drops_capabilities=False, read_only_root=False)
    assert succeeds([*DROP_ALL_CAPABILITIES, "true"]), "setpriv (util-linux) cannot drop caps"
    read_only_root = succeeds([*PRIVATE_MOUNTS, "mount", "-o", "remount,bind,ro", "/"])
    return Confinement(drops_capabilities=True, read_only_root=read_only_root)


# ---- the pod's view of the local stack --------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    store: str
    argv: list[str]
    env: dict[str, str]
    config_dir: Path
    """The ConfigMap's mount."""
    tmp: Path
    """The emptyDir: HOME, the working directory, TMPDIR."""


def synced_secrets(project: Path) -> dict[str, dict[str, str]]:
    """The Secrets as the secret store's sync fills them: the stores that have credentials."""
    credentials = Credentials.from_file(project / ".drkit" / "local" / "credentials.json")
    return {
        credentials_secret_name(store): {"username": c.user, "password": c.password}
        for store, c in credentials.stores.items()
    }


def resolve(item: dict[str, Any], secrets: dict[str, dict[str, str]]) -> str:
    if "value" in item:
        return str(item["value"])
    reference = item["valueFrom"]["secretKeyRef"]
    name, key = reference["name"], reference["key"]
    assert not reference.get("optional"), item
    assert name in secrets, (
        f"{item['name']} refers to Secret {name!r}, which nothing syncs "
        f"(there are {sorted(secrets)}): the pod would never start"
    )
    assert key in secrets[name], f"{item['name']}: Secret {name!r} has no key {key!r}"
    return secrets[name][key]


def in_config_dir(value: str, config_dir: Path) -> str:
    if value == CONFIG_DIR or value.startswith(CONFIG_DIR + "/"):
        return str(config_dir) + value[len(CONFIG_DIR) :]
    return value


def build_pod(
    declared: Declared,
    image: Image,
    store: str,
    project: Path,
    root: Path,
    pushgateway: LocalPushgateway,
    secrets: dict[str, dict[str, str]],
) -> Pod:
    cronjob = declared.cronjobs[store]
    container = container_of(cronjob)

    mount, volume = volume_at(cronjob, CONFIG_DIR)
    assert mount["readOnly"] is True
    items = volume["configMap"]
    assert items["name"] == declared.config_map["metadata"]["name"]
    data = dict(declared.config_map["data"])
    local_outputs = project / ".drkit" / "local" / "outputs.json"
    data["outputs.json"] = local_outputs.read_text()  # the one file that cannot be prod's
    config_dir = root / "etc-drkit"
    config_dir.mkdir()
    for item in items["items"]:
        path = config_dir / item["path"]
        path.write_text(data[item["key"]])
        path.chmod(items["defaultMode"])
    config_dir.chmod(0o555)

    _, scratch = volume_at(cronjob, "/tmp")
    assert "emptyDir" in scratch and image.workdir == "/tmp" and image.env["HOME"] == "/tmp"
    tmp = root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o777)

    env = {name: value.replace("/tmp", str(tmp)) for name, value in image.env.items()}
    env["PATH"] = env["PATH"].replace("/opt/drkit/bin", str(Path(sys.executable).parent))
    env["PATH"] = env["PATH"].replace("$PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env["TMPDIR"] = str(tmp)
    for item in container["env"]:  # the container's env overrides the image's
        env[item["name"]] = in_config_dir(resolve(item, secrets), config_dir)
    assert env["DRKIT_PUSHGATEWAY"].startswith("http://")  # the cluster's, from the stack config
    env["DRKIT_PUSHGATEWAY"] = pushgateway.url
    region = StackOutputs.from_file(local_outputs).region
    env |= {
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_KEY,
    }

    command = container.get("command") or image.entrypoint
    args = container.get("args") or image.cmd
    assert command == ["python", "-m", "drkit"] and args == ["backup", store]
    return Pod(store, [sys.executable, *command[1:], *args], env, config_dir, tmp)


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def log(self) -> str:
        return self.stdout + self.stderr


def run_pod(pod: Pod, confinement: Confinement) -> Run:
    result = subprocess.run(
        confinement.command(pod.tmp, pod.argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=pod.env,
        cwd=pod.tmp,
        check=False,
        timeout=120,
    )
    return Run(result.returncode, result.stdout, result.stderr)


@pytest.fixture
def pod_root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "pod"
    root.mkdir()
    yield root
    for path in (root, *root.rglob("*")):  # writable again, for tmp_path's cleanup
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)


# ---- what the run left ------------------------------------------------------------------------


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every entry under ``root``, and ``root``: (mode, size, mtime)."""
    found = {}
    for path in [root, *sorted(root.rglob("*"))]:
        stat = path.lstat()
        found[str(path.relative_to(root))] = (stat.st_mode, stat.st_size, stat.st_mtime_ns)
    return found


def json_lines(run: Run) -> list[dict[str, Any]]:
    """The container's log as the kubelet keeps it, stdout and stderr by time: each line must be
    one JSON object."""
    lines = [line for line in run.log.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a log line that is not JSON: {line!r}")
    return sorted(parsed, key=lambda line: str(line["ts"]))


def gateway_samples(gateway: LocalPushgateway, component: str) -> dict[str, float]:
    samples = {}
    for family in text_string_to_metric_families(gateway.metrics_text()):
        for sample in family.samples:
            if sample.name in METRICS and sample.labels.get("component") == component:
                samples[sample.name] = sample.value
    return samples


def manifest_keys(aws: LocalAws, ctx: OpsContext, store: str) -> list[str]:
    prefix = f"{ctx.config.stores[store].data_class}/{store}/"
    response = aws.s3().list_objects_v2(Bucket=ctx.outputs.backup_vault.name, Prefix=prefix)
    return [i["Key"] for i in response.get("Contents", []) if i["Key"].endswith(MANIFEST_NAME)]


def cloudwatch(aws: LocalAws, ctx: OpsContext) -> Any:
    return aws.client("cloudwatch", ctx.outputs.region)


def cloudwatch_values(
    aws: LocalAws, ctx: OpsContext, store: str, metric: str, stat: str, around: datetime
) -> list[float]:
    response = cloudwatch(aws, ctx).get_metric_data(
        MetricDataQueries=[
            {
                "Id": "m",
                "MetricStat": {
                    "Metric": {
                        "Namespace": CLOUDWATCH_NAMESPACE,
                        "MetricName": metric,
                        "Dimensions": [{"Name": "Component", "Value": store}],
                    },
                    "Period": 60,
                    "Stat": stat,
                },
            }
        ],
        StartTime=around - timedelta(minutes=5),
        EndTime=around + timedelta(minutes=5),
    )
    [result] = response["MetricDataResults"]
    return [float(value) for value in result["Values"]]


# ---- the stores' data -------------------------------------------------------------------------


def kafka_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    """Records per topic: what a full backup reads (from each log start to each end)."""
    consumer = reader(bootstrap)
    try:
        metadata = consumer.list_topics(timeout=10)
        counts = dict.fromkeys(topics, 0)
        for topic in topics:
            for partition in metadata.topics[topic].partitions:
                low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=10
                )
                counts[topic] += high - low
        return counts
    finally:
        consumer.close()


def redis_counts(server: LocalRedis) -> dict[str, int]:
    """Keys (and keys with a TTL) per database and in all, as the RDB walk counts them."""
    with server.client() as client:
        keyspace = client.info("keyspace")
    counts = {"keys": 0, "keys_with_ttl": 0}
    for db, info in keyspace.items():
        counts[f"{db}.keys"] = int(info["keys"])
        counts[f"{db}.keys_with_ttl"] = int(info["expires"])
        counts["keys"] += int(info["keys"])
        counts["keys_with_ttl"] += int(info["expires"])
    return counts


@dataclass(frozen=True)
class StoreData:
    """A store with data in it; ``counts`` reads what a backup taken now must count."""

    name: str
    project: Path
    counts: Callable[[], dict[str, int]]


@pytest.fixture(params=["trading-db", "event-stream", "session-cache"])
def store_data(
    request: pytest.FixtureRequest, project_with_kafka: Path, redis_server: LocalRedis
) -> Iterator[StoreData]:
    store: str = request.param
    project = project_with_kafka
    ctx = OpsContext.load("local", project_dir=project)
    if store == "trading-db":
        conninfo = postgres_source(ctx, store).conninfo()
        seed_trading_database(conninfo, TradingDataSize.for_megabytes(0.2))
        yield StoreData(store, project, lambda: table_counts(conninfo))
    elif store == "event-stream":
        # The ConfigMap's config names the real topics: made here if the broker lacks them.
        endpoint = ctx.outputs.stores[store]
        bootstrap = f"{endpoint.host}:{endpoint.port}"
        topics = list(ctx.config.stores[store].topics)
        listed = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
        created = [t for t in topics if t not in listed]
        if created:
            create_topics(bootstrap, created)
        for topic in topics:
            produce(bootstrap, topic, 0, 12)
        yield StoreData(store, project, lambda: kafka_counts(bootstrap, topics))
        if created:
            delete_topics(bootstrap, created)
    else:
        assert ctx.outputs.stores[store].data_path == str(redis_server.rdb_path)
        with redis_server.client() as client:
            client.mset({f"pod-test:{i}": f"value-{i}" for i in range(20)})
        yield StoreData(store, project, lambda: redis_counts(redis_server))


# ---- the tests --------------------------------------------------------------------------------


def test_the_confinement_leaves_only_the_tmp_stand_in_writable(
    confinement: Confinement, tmp_path: Path
) -> None:
    """The harness itself: what a process run with the pod's wrapper may write."""
    writable, readonly, elsewhere = tmp_path / "tmp", tmp_path / "readonly", tmp_path / "other"
    writable.mkdir()
    readonly.mkdir(mode=0o555)
    elsewhere.mkdir()
    probe = (
        "import sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        open(path, 'w').close()\n"
        "    except OSError as error:\n"
        "        print(path, error.errno)\n"
        "    else:\n"
        "        print(path, 'written')\n"
        "print('CapEff', open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
    )
    targets = [str(writable / "f"), str(readonly / "f"), str(elsewhere / "f")]
    result = subprocess.run(
        confinement.command(writable, [sys.executable, "-c", probe, *targets]),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcome = dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())
    assert outcome[targets[0]] == "written"
    assert outcome[targets[1]] in {str(errno.EACCES), str(errno.EROFS)}
    if confinement.read_only_root:  # everything but the /tmp stand-in
        assert outcome[targets[2]] == str(errno.EROFS)
    if confinement.drops_capabilities:
        assert int(outcome["CapEff"], 16) == 0


def test_the_pod_backs_up_its_store_and_reports_it(
    store_data: StoreData,
    declared: Declared,
    image: Image,
    confinement: Confinement,
    pushgateway: LocalPushgateway,
    aws_emulator: LocalAws,
    pod_root: Path,
) -> None:
    store, project = store_data.name, store_data.project
    secrets = synced_secrets(project)
    pod = build_pod(declared, image, store, project, pod_root, pushgateway, secrets)
    config_before = tree(pod.config_dir)

    run = run_pod(pod, confinement)

    assert run.returncode == 0, run.log
    ctx = OpsContext.load("local", project_dir=project)
    # the run read the ConfigMap's config for prod, and the local servers' outputs
    [key] = manifest_keys(aws_emulator, ctx, store)
    manifest = Manifest.model_validate_json(ctx.vault().get_bytes(key))
    assert manifest.store == store
    assert manifest.counts == store_data.counts(), run.log
    assert manifest.destinations == [
        f"s3://{ctx.outputs.backup_vault.name}",
        f"gs://{ctx.outputs.gcs_mirror_bucket}",
    ]
    assert BackupIndex(ctx.config, ctx.vault()).latest(store).backup_id == manifest.backup_id
    if store == "session-cache":  # the data file on the "shared volume" (read-only is enough)
        assert manifest.consistent_point["method"] == "bgsave + shared volume", run.log

    logs = json_lines(run)
    assert all(line["store"] == store for line in logs), logs
    assert {line["level"] for line in logs} == {"info"}, logs
    stack_line, *messages = [line["message"] for line in logs]
    assert (
        stack_line == f"stack: {STACK} (production; from DRKIT_STACK)"
    )  # DRKIT_YES=true: asked none
    assert (
        messages[0].startswith(f"plan: back up {store} (") and f"of stack {STACK} " in messages[0]
    )
    assert f"backup {manifest.backup_id} committed" in messages[-1]
    assert "backup finished" in messages
    for credentials in secrets.values():  # no password of any store in the log
        assert credentials["password"] not in run.log

    samples = gateway_samples(pushgateway, store)
    assert samples == {
        "backup_last_result": 1,
        "backup_last_success_timestamp_seconds": manifest.finished_at.timestamp(),
        "backup_size_bytes": manifest.size,
        "backup_duration_seconds": manifest.duration_seconds,
    }
    listed = cloudwatch(aws_emulator, ctx).list_metrics(
        Namespace=CLOUDWATCH_NAMESPACE, Dimensions=[{"Name": "Component", "Value": store}]
    )
    assert {m["MetricName"] for m in listed["Metrics"]} >= CLOUDWATCH_METRICS
    stamps = cloudwatch_values(
        aws_emulator, ctx, store, "BackupLastSuccessTimestamp", "Maximum", manifest.finished_at
    )
    assert max(stamps) == manifest.finished_at.timestamp()  # the newest success is this run's

    assert tree(pod.config_dir) == config_before
    assert list(pod.tmp.iterdir()) == []  # the engine streams: no scratch file, no cache


def test_a_pod_with_a_wrong_password_fails_and_reports_the_failure(
    declared: Declared,
    image: Image,
    confinement: Confinement,
    project: Path,
    pushgateway: LocalPushgateway,
    aws_emulator: LocalAws,
    pod_root: Path,
) -> None:
    store = "trading-db"
    secrets = synced_secrets(project)
    wrong = "not-the-password"
    secrets[credentials_secret_name(store)]["password"] = wrong
    pod = build_pod(declared, image, store, project, pod_root, pushgateway, secrets)
    before = gateway_samples(pushgateway, store)
    started = datetime.now(UTC)

    run = run_pod(pod, confinement)

    # 1: the backup failed (worth the Job's one retry); 2 (bad input) would fail the Job at once
    assert run.returncode == 1, run.log
    job = declared.cronjobs[store]["spec"]["jobTemplate"]["spec"]
    fail_job = [r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob"]
    assert all(run.returncode not in r["onExitCodes"]["values"] for r in fail_job)
    ctx = OpsContext.load("local", project_dir=project)
    assert manifest_keys(aws_emulator, ctx, store) == []
    with pytest.raises(RecoveryError, match="no backup of 'trading-db'"):
        BackupIndex(ctx.config, ctx.vault()).latest(store)

    logs = json_lines(run)
    assert all(line["store"] == store for line in logs), logs
    [failed] = [line for line in logs if line["message"] == "backup failed"]
    assert failed["level"] == "error"
    assert "password authentication failed" in failed["error"]  # the reason, in the error record
    [summary] = [line for line in logs if line["message"].startswith("FAILED: ")]
    assert "password authentication failed" in summary["message"]
    assert wrong not in run.log

    after = gateway_samples(pushgateway, store)
    assert after["backup_last_result"] == 0
    assert after["backup_duration_seconds"] > 0
    for kept in ("backup_last_success_timestamp_seconds", "backup_size_bytes"):
        assert after.get(kept) == before.get(kept), kept  # a failure never hides an old success
    assert 0.0 in cloudwatch_values(aws_emulator, ctx, store, "BackupSuccess", "Minimum", started)
    assert list(pod.tmp.iterdir()) == []
