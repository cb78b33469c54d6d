"""Run the backup CronJobs' part of a stack (infra/kubernetes.py) under the recording mocks.

Until infra/program.py calls it, this drives the two calls the way the program will, for each
stack's real config file: the IRSA roles with the region's AWS provider, then the Kubernetes objects
with a Kubernetes provider and the stack's outputs. The outputs are ``StackOutputs`` built from the
config with the program's naming (``sample_outputs``), validated by the model, so the ConfigMap the
pods read is checked against the same model ``python -m drkit`` parses it with.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
from k8s_openapi import as_sent
from program_harness import ACCOUNT, ROOT, Recorded, RecordingMocks, StackRun, run_program

from components import naming
from stackmodels import StackConfig, StackOutputs

K8S_PREFIX = "kubernetes:"


def _bucket(name: str, region: str) -> dict[str, str]:
    return {"name": name, "arn": naming.s3_arn("aws", name), "region": region}


def sample_outputs(config: StackConfig, stack: str) -> dict[str, Any]:
    """The stack's outputs as ops reads them, with every field the model defaults filled in."""
    region, platform = config.region, config.platform
    values = {
        "stack": stack,
        "role": config.role.value,
        "region": region,
        "platform": platform,
        "backup_vault": _bucket(naming.vault_bucket_name(platform, ACCOUNT, region), region),
        "vault_key_arn": f"arn:aws:kms:{region}:{ACCOUNT}:key/mrk-0123456789abcdef0123456789abcdef",
        "audit_bucket": _bucket(naming.audit_bucket_name(platform, ACCOUNT, region), region),
        "gcs_mirror_bucket": f"{config.gcp.project}-backup-mirror",
        "k8s_namespace": config.kubernetes.namespace,
        "k8s_backup_namespace": config.kubernetes.backup_namespace,
    }
    dumped: dict[str, Any] = StackOutputs.parse(values, stack).model_dump(mode="json")
    return dumped


def run_backup_jobs(stack: str, config: StackConfig | None = None) -> StackRun:
    """For ``Pulumi.<stack>.yaml``, or ``config`` (a variant of it)."""
    from infra.kubernetes import define_backup_job_roles, define_backup_jobs

    config = config or StackConfig.for_stack(stack, ROOT)
    outputs = sample_outputs(config, stack)
    mocks = RecordingMocks()

    def program() -> dict[str, Any]:
        aws_provider = aws.Provider(f"aws-{config.region}", region=config.region)
        cluster = k8s.Provider(f"k8s-{config.region}", namespace=config.kubernetes.namespace)
        roles = define_backup_job_roles(
            config,
            account=ACCOUNT,
            partition="aws",
            vault_arn=outputs["backup_vault"]["arn"],
            audit_arn=outputs["audit_bucket"]["arn"],
            provider=aws_provider,
        )
        role_arns: dict[str, pulumi.Input[str]] = {s: r.arn for s, r in roles.items()}
        return define_backup_jobs(
            config, stack, role_arns=role_arns, outputs=outputs, provider=cluster
        )

    resolved, messages = run_program(program, stack, mocks)
    return StackRun(stack, config, mocks.resources, resolved, mocks.calls, messages)


def manifests(run: StackRun) -> list[dict[str, Any]]:
    """Every Kubernetes object the run declared, as the API server would receive it."""
    return [manifest(r) for r in run.resources if r.type.startswith(K8S_PREFIX)]


def manifest(resource: Recorded) -> dict[str, Any]:
    body: dict[str, Any] = as_sent(resource.inputs)
    return body
