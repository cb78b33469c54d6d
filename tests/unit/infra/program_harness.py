"""Run the real Pulumi program (``infra.program.define_stack``) under recording mocks.

Each run gets fresh mocks (``pulumi.runtime.set_mocks`` resets the runtime settings) and is driven
by ``pulumi.runtime.test``, which waits for every outstanding registration, so prod and dr can run
one after the other in one session. The dr run's StackReference serves the prod run's exports,
which tests the contract between the two stacks, not a hand-written copy of it.

Pulumi's own deprecation notices come two ways: ``DeprecationWarning`` (pyproject turns those from
pulumi* modules into errors) and ``pulumi.log.warn`` messages, which the mock engine hands to the
logger given here; a run fails if any of those mentions "deprecated".
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

from stackmodels import StackConfig
from stackmodels.config import VaultStackConfig, load_any

PROVIDER_MODULES = [
    "pulumi_aws.s3",
    "pulumi_aws.kms",
    "pulumi_aws.iam",
    "pulumi_aws.ecr",
    "pulumi_aws.ec2",
    "pulumi_gcp.storage",
    "pulumi_gcp.kms",
    "pulumi_gcp.serviceaccount",
]


def import_provider_modules() -> None:
    """Import the provider modules the program uses, ignoring their import-time notices.

    ``pulumi_aws.s3`` imports its deprecated ``...V2`` alias modules, each of which warns once at
    import whether or not it is used. Importing here, once, keeps pyproject's "pulumi
    DeprecationWarning is an error" filter for what the program *does*: an instance of a
    deprecated resource or a deprecated argument still warns at construction (and logs a
    "deprecated" message, which ``run_program`` fails on).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for module in PROVIDER_MODULES:
            loaded = importlib.import_module(module)
            hasattr(loaded, "_force_lazy_load")  # provider modules load lazily: run the import


import_provider_modules()

PROJECT = "trading-dr"
ACCOUNT = "123456789012"
ROOT = Path(__file__).resolve().parents[3]


@dataclass
class Recorded:
    """A resource as the engine saw it: type, name, inputs, and the region of its provider."""

    type: str
    name: str
    inputs: dict[str, Any]
    state: dict[str, Any]
    provider: str | None
    urn_parent: str | None = None
    region: str | None = None
    options: Options | None = None


@dataclass(frozen=True)
class Options:
    """The resource options the engine received (the mocks' own args omit them)."""

    protect: bool
    ignore_changes: tuple[str, ...]
    import_id: str | None
    depends_on: tuple[str, ...]
    parent: str | None = None
    provider: str | None = None


@dataclass
class StackRun:
    stack: str
    config: Any
    """``StackConfig``, or ``VaultStackConfig`` for the vault stack."""
    resources: list[Recorded]
    outputs: dict[str, Any]
    calls: list[str]
    warnings: list[str] = field(default_factory=list)

    def of_type(self, type_: str) -> list[Recorded]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: str) -> Recorded:
        found = [r for r in self.resources if r.type == type_ and r.name == name]
        assert len(found) == 1, f"expected one {type_} named {name}, got {len(found)}"
        return found[0]

    def for_bucket(self, type_: str, bucket: str) -> list[Recorded]:
        return [r for r in self.of_type(type_) if r.inputs.get("bucket") == bucket]


def _hex(seed: str, length: int = 32) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class RecordingMocks(pulumi.runtime.Mocks):
    """Realistic ids and ARNs per type; answers the data sources the program calls."""

    def __init__(
        self, stack_outputs: dict[str, dict[str, Any]] | None = None, account: str = ACCOUNT
    ) -> None:
        self.stack_outputs = stack_outputs or {}
        self.account = account
        """The deploying credentials' account (the vault stack runs in an account of its own)."""
        self.resources: list[Recorded] = []
        self.provider_regions: dict[str, str | None] = {}
        self.calls: list[str] = []
        self.parents: dict[tuple[str, str], str] = {}
        """The parent URN of each registration, by (type, name), as ``capture_options`` saw it."""
        self.request_options: dict[tuple[str, str], Options] = {}
        """By (type, name), set by ``capture_options`` before the engine calls ``new_resource``.
        Keyed, not one field: registrations run concurrently, and a single "last request" field
        would hand one resource's options to another."""

    def _region(self, provider: str | None) -> str | None:
        if not provider:
            return None
        return self.provider_regions.get(provider.rsplit("::", 1)[-1])

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        region = self._region(args.provider)
        state = dict(inputs)
        typ, name = args.typ, args.name
        rid = f"{name}-id"
        if typ.startswith("pulumi:providers:"):
            rid = f"provider-{name}"
            self.provider_regions[rid] = (
                inputs.get("region") or inputs.get("project") or inputs.get("context")
            )
        elif typ == "pulumi:pulumi:StackReference":
            target = args.resource_id or inputs.get("name", "")
            stack = str(target).rsplit("/", 1)[-1]
            if stack not in self.stack_outputs:
                raise KeyError(f"no outputs for referenced stack {target!r}")
            rid = str(target)
            state = {"name": target, "outputs": self.stack_outputs[stack], "secretOutputNames": []}
        elif typ == "aws:s3/bucket:Bucket":
            rid = inputs["bucket"]
            state.update(
                arn=f"arn:aws:s3:::{rid}",
                bucket=rid,
                region=region,
                bucketDomainName=f"{rid}.s3.amazonaws.com",
            )
        elif typ == "aws:kms/key:Key":
            prefix = "mrk-" if inputs.get("multiRegion") else ""
            rid = prefix + _hex(f"{region}/{name}")
            state.update(keyId=rid, arn=f"arn:aws:kms:{region}:{self.account}:key/{rid}")
        elif typ == "aws:kms/replicaKey:ReplicaKey":
            rid = str(inputs["primaryKeyArn"]).rsplit("/", 1)[-1]
            state.update(keyId=rid, arn=f"arn:aws:kms:{region}:{ACCOUNT}:key/{rid}")
        elif typ == "aws:kms/alias:Alias":
            rid = inputs["name"]
            state.update(arn=f"arn:aws:kms:{region}:{ACCOUNT}:{rid}")
        elif typ == "aws:iam/role:Role":
            rid = inputs["name"]
            state.update(
                arn=f"arn:aws:iam::{self.account}:role/{rid}", uniqueId=f"AROA{_hex(rid, 16)}"
            )
        elif typ == "aws:cloudtrail/trail:Trail":
            rid = inputs["name"]
            state.update(arn=f"arn:aws:cloudtrail:{region}:{self.account}:trail/{rid}")
        elif typ == "aws:ecr/repository:Repository":
            rid = inputs["name"]
            state.update(
                arn=f"arn:aws:ecr:{region}:{ACCOUNT}:repository/{rid}",
                registryId=ACCOUNT,
                repositoryUrl=f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{rid}",
            )
        elif typ == "gcp:kms/keyRing:KeyRing":
            location = f"projects/{inputs['project']}/locations/{inputs['location']}"
            rid = f"{location}/keyRings/{inputs['name']}"
        elif typ == "gcp:kms/cryptoKey:CryptoKey":
            rid = f"{inputs['keyRing']}/cryptoKeys/{inputs['name']}"
        elif typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{inputs['project']}.iam.gserviceaccount.com"
            rid = f"projects/{inputs['project']}/serviceAccounts/{email}"
            state.update(email=email, member=f"serviceAccount:{email}")
        elif typ == "gcp:storage/bucket:Bucket":
            rid = inputs["name"]
            state.update(
                url=f"gs://{rid}", selfLink=f"https://www.googleapis.com/storage/v1/b/{rid}"
            )
        else:
            rid, extra = _state_of(typ, name, inputs, region, rid)
            state.update(extra)
        if typ != "pulumi:pulumi:StackReference":
            self.resources.append(
                Recorded(
                    typ,
                    name,
                    inputs,
                    state,
                    args.provider,
                    urn_parent=self.parents.get((typ, name)),
                    region=region,
                    options=self.request_options.get((typ, name)),
                )
            )
        return rid, state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        self.calls.append(args.token)
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": self.account,
                "arn": f"arn:aws:sts::{self.account}:assumed-role/deployer/ci",
                "userId": "AROAEXAMPLE:ci",
                "id": self.account,
            }, []
        if args.token == "aws:index/getPartition:getPartition":
            return {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "reverseDnsPrefix": "com.amazonaws",
                "id": "aws",
            }, []
        if args.token == "gcp:storage/getProjectServiceAccount:getProjectServiceAccount":
            project = args.args.get("project")
            email = "service-123456789@gs-project-accounts.iam.gserviceaccount.com"
            return {
                "emailAddress": email,
                "member": f"serviceAccount:{email}",
                "project": project,
                "id": email,
            }, []
        if args.token == "aws:s3/getCanonicalUserId:getCanonicalUserId":
            owner = _hex(f"canonical/{ACCOUNT}", 64)
            return {"id": owner, "displayName": "deployer"}, []
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            secret = args.args["secretId"]
            return {
                "arn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{secret}-AbCdEf",
                "id": f"{secret}|AWSCURRENT",
                "name": secret,
                "secretId": secret,
                "secretString": json.dumps({"password": f"pw-{_hex(secret, 24)}"}),
                "versionId": _hex(secret + "/version", 32),
                "versionStage": "AWSCURRENT",
                "versionStages": ["AWSCURRENT"],
            }, []
        raise NotImplementedError(f"the mocks do not answer {args.token}: add it to RecordingMocks")


def _state_of(
    typ: str, name: str, inputs: dict[str, Any], region: str | None, rid: str
) -> tuple[str, dict[str, Any]]:
    """Ids and computed attributes of the standby resources, shaped like AWS's."""
    arn = f"arn:aws:{{service}}:{region}:{ACCOUNT}:{{resource}}"
    if typ == "aws:rds/globalCluster:GlobalCluster":
        rid = inputs["globalClusterIdentifier"]
        return rid, {
            "arn": f"arn:aws:rds::{ACCOUNT}:global-cluster:{rid}",
            "endpoint": f"{rid}.global-{_hex(rid, 12)}.global.rds.amazonaws.com",
            "engine": inputs.get("engine", "aurora-postgresql"),
            "globalClusterResourceId": f"cluster-{_hex(rid, 16)}",
        }
    if typ == "aws:rds/cluster:Cluster":
        rid = inputs["clusterIdentifier"]
        suffix = f"{_hex(str(region), 12)}.{region}.rds.amazonaws.com"
        return rid, {
            "arn": arn.format(service="rds", resource=f"cluster:{rid}"),
            "endpoint": f"{rid}.cluster-{suffix}",
            "readerEndpoint": f"{rid}.cluster-ro-{suffix}",
            "port": 5432,
        }
    if typ == "aws:rds/clusterInstance:ClusterInstance":
        rid = inputs["identifier"]
        return rid, {"arn": arn.format(service="rds", resource=f"db:{rid}")}
    if typ in ("aws:rds/subnetGroup:SubnetGroup", "aws:elasticache/subnetGroup:SubnetGroup"):
        return inputs["name"], {}
    if typ == "aws:ec2/securityGroup:SecurityGroup":
        rid = f"sg-{_hex(f'{region}/{name}', 17)}"
        return rid, {"arn": arn.format(service="ec2", resource=f"security-group/{rid}")}
    if typ == "aws:msk/configuration:Configuration":
        resource = f"configuration/{inputs['name']}/{_hex(name, 8)}"
        return arn.format(service="kafka", resource=resource), {
            "arn": arn.format(service="kafka", resource=resource),
            "latestRevision": 1,
        }
    if typ == "aws:msk/cluster:Cluster":
        cluster = inputs["clusterName"]
        cluster_arn = arn.format(service="kafka", resource=f"cluster/{cluster}/{_hex(cluster, 8)}")
        brokers = ",".join(
            f"b-{n}.{cluster}.{_hex(cluster, 6)}.c2.kafka.{region}.amazonaws.com:9098"
            for n in range(1, int(inputs.get("numberOfBrokerNodes", 3)) + 1)
        )
        return cluster_arn, {"arn": cluster_arn, "bootstrapBrokersSaslIam": brokers}
    if typ == "aws:msk/replicator:Replicator":
        replicator = inputs["replicatorName"]
        resource = f"replicator/{replicator}/{_hex(replicator, 8)}"
        return arn.format(service="kafka", resource=resource), {
            "arn": arn.format(service="kafka", resource=resource)
        }
    if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        rid = inputs["replicationGroupId"]
        code = "".join(part[0] for part in str(region).split("-")[:-1]) + str(region)[-1]
        host = f"{rid}.{_hex(rid, 6)}.{code}.cache.amazonaws.com"
        return rid, {
            "arn": arn.format(service="elasticache", resource=f"replicationgroup:{rid}"),
            "primaryEndpointAddress": f"master.{host}",
            "readerEndpointAddress": f"replica.{host}",
            "memberClusters": [
                f"{rid}-{n:03d}" for n in range(1, int(inputs["numCacheClusters"]) + 1)
            ],
        }
    if typ == "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup":
        rid = f"ldgnf-{inputs['globalReplicationGroupIdSuffix']}"
        return rid, {
            "globalReplicationGroupId": rid,
            "arn": f"arn:aws:elasticache::{ACCOUNT}:globalreplicationgroup:{rid}",
        }
    if typ == "aws:timestreaminfluxdb/dbInstance:DbInstance":
        rid = _hex(f"{region}/{inputs['name']}", 10)
        return rid, {
            "arn": arn.format(service="timestream-influxdb", resource=f"db-instance/{rid}"),
            "endpoint": f"{rid}-{_hex(rid, 10)}.timestream-influxdb.{region}.on.aws",
            "availabilityZone": f"{region}a",
            "influxAuthParametersSecretArn": arn.format(
                service="secretsmanager", resource=f"secret:READONLY-InfluxDB-auth-{rid}-AbCdEf"
            ),
        }
    if typ == "aws:backup/vault:Vault":
        rid = inputs["name"]
        return rid, {"arn": arn.format(service="backup", resource=f"backup-vault:{rid}")}
    if typ == "aws:backup/plan:Plan":
        rid = _hex(f"{region}/{name}", 32)
        return rid, {"arn": arn.format(service="backup", resource=f"backup-plan:{rid}")}
    if typ == "aws:sns/topic:Topic":
        topic_arn = arn.format(service="sns", resource=inputs["name"])
        return topic_arn, {"arn": topic_arn}
    if typ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        return inputs["name"], {
            "arn": arn.format(service="cloudwatch", resource=f"alarm:{inputs['name']}")
        }
    if typ == "aws:route53/zone:Zone":
        rid = "Z" + _hex(inputs["name"], 20).upper()
        return rid, {"zoneId": rid, "arn": f"arn:aws:route53:::hostedzone/{rid}"}
    if typ == "aws:route53/healthCheck:HealthCheck":
        rid = (
            f"{_hex(name, 8)}-{_hex(name + '/1', 4)}-{_hex(name + '/2', 4)}-{_hex(name + '/3', 12)}"
        )
        return rid, {"arn": f"arn:aws:route53:::healthcheck/{rid}"}
    return rid, {}


def capture_options(mocks: RecordingMocks) -> None:
    """Let ``mocks`` see each registration's resource options (protect, ignore_changes, import).

    ``MockResourceArgs`` carries none of them, but the mock monitor receives the engine's request;
    wrapping its ``RegisterResource`` hands them to the mocks just before ``new_resource``.
    """
    monitor = pulumi.runtime.settings.get_monitor()
    register = monitor.RegisterResource

    def register_with_options(request: Any) -> Any:
        options = Options(
            protect=bool(request.protect),
            ignore_changes=tuple(request.ignoreChanges),
            import_id=request.importId or None,
            depends_on=tuple(request.dependencies),
            parent=request.parent or None,
            provider=request.provider or None,
        )
        key = (request.type, request.name)
        if request.parent:
            mocks.parents[key] = request.parent
        known = mocks.request_options.setdefault(key, options)
        if known != options:
            raise AssertionError(f"two registrations of {key} with different options")
        return register(request)

    monitor.RegisterResource = register_with_options


class _WarningRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def run_program(
    program: Callable[[], dict[str, Any]], stack: str, mocks: RecordingMocks
) -> tuple[dict[str, Any], list[str]]:
    """Run ``program`` under fresh mocks; return its resolved outputs and the engine warnings.

    Fails if Pulumi logged anything "deprecated" (a deprecated resource or argument in use).
    """
    logger = logging.getLogger(f"pulumi-mocks-{stack}")
    logger.propagate = False
    recorder = _WarningRecorder()
    logger.addHandler(recorder)
    pulumi.runtime.set_mocks(
        mocks,
        project=PROJECT,
        stack=stack,
        preview=False,
        logger=logger,
        organization="organization",
    )
    capture_options(mocks)
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def run() -> pulumi.Output[None]:
        return pulumi.Output.from_input(program()).apply(resolved.update)

    try:
        run()
    finally:
        logger.removeHandler(recorder)
    deprecated = [m for m in recorder.messages if "deprecat" in m.lower()]
    assert not deprecated, f"Pulumi deprecation warnings: {deprecated}"
    return resolved, recorder.messages


def run_stack(
    stack: str,
    stack_outputs: dict[str, dict[str, Any]] | None = None,
    config: StackConfig | VaultStackConfig | None = None,
    account: str | None = None,
) -> StackRun:
    """Run ``define_stack`` for ``Pulumi.<stack>.yaml`` (or ``config``, a variant of it); return
    what the engine recorded. ``account``: the deploying credentials' (default: the vault
    stack's own for a vault config, else ``ACCOUNT``)."""
    from infra.program import define_stack

    config = config or load_any(ROOT / f"Pulumi.{stack}.yaml")
    if account is None:
        account = config.account_id if isinstance(config, VaultStackConfig) else ACCOUNT
    key = json.dumps(
        [stack, stack_outputs, config.model_dump(mode="json"), account], sort_keys=True
    )
    if key in _RUNS:  # the unit and policy suites read the same runs: declare each stack once
        return _RUNS[key]
    mocks = RecordingMocks(stack_outputs, account)
    outputs, messages = run_program(lambda: define_stack(config, stack), stack, mocks)
    _RUNS[key] = StackRun(stack, config, mocks.resources, outputs, mocks.calls, messages)
    return _RUNS[key]


_RUNS: dict[str, StackRun] = {}


def config_variant(stack: str, **changes: Any) -> StackConfig:
    """``Pulumi.<stack>.yaml`` with top-level keys replaced (validated like the file)."""
    values = StackConfig.for_stack(stack, ROOT).model_dump(mode="json")
    values.update(changes)
    return StackConfig.model_validate(values)
