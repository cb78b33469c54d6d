"""The ``vault`` stack: the isolated backup account (issue 22), declared by the same program.

It reads nothing from prod or dr: who may write and read comes from its own config
(``VaultStackConfig``), and prod and dr read its exports (``VaultStackOutputs``) through a
StackReference. It refuses to run with credentials of another account than its config's: a vault
deployed into the production account would be no isolation at all.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.backup_vault import Tier, VaultDataClass
from components.isolated_vault import IsolatedVault, IsolatedVaultArgs, Writer
from infra.providers import aws_provider
from stackmodels.config import ObjectLockMode, RetentionClass, VaultStackConfig
from stackmodels.outputs import VaultStackOutputs

TRAIL_NAME = "{platform}-isolated-vault-trail"
READER_ROLE_NAME = "{platform}-isolated-vault-reader"


class WrongAccount(ValueError):
    """The deploying credentials are not the vault account's."""


def _mode(retention: RetentionClass) -> str:
    return "COMPLIANCE" if retention.object_lock is ObjectLockMode.COMPLIANCE else "GOVERNANCE"


def vault_data_classes(config: VaultStackConfig) -> list[VaultDataClass]:
    return [
        VaultDataClass(
            name=name,
            lock_mode="COMPLIANCE"
            if _mode(config.retention_of(name)) == "COMPLIANCE"
            else "GOVERNANCE",
            retention_days=config.retention_of(name).days,
            tiers=[Tier(storage_class=c, days=d) for c, d in data_class.lifecycle.tiers()],
        )
        for name, data_class in config.data_classes.items()
    ]


def check_account(config: VaultStackConfig, deploying: str) -> str:
    if deploying != config.account_id:
        raise WrongAccount(
            f"trading-dr:account_id is {config.account_id} but the deploying credentials are of "
            f"account {deploying}: the vault stack deploys only into its own (isolated) account"
        )
    return deploying


def isolated_vault_args(config: VaultStackConfig, partition: str) -> IsolatedVaultArgs:
    platform, account, region = config.platform, config.account_id, config.region

    def role(acct: str, name: str) -> str:
        return naming.iam_role_arn(partition, acct, name)

    audit = config.retention_classes[config.audit_retention]
    system = config.retention_classes.get("system", RetentionClass(days=365))
    return IsolatedVaultArgs(
        platform=platform,
        account_id=account,
        region=region,
        partition=partition,
        vault_bucket_name=naming.vault_bucket_name(platform, account, region),
        audit_bucket_name=naming.audit_bucket_name(platform, account, region),
        access_log_bucket_name=naming.access_log_bucket_name(platform, account, region),
        trail_name=TRAIL_NAME.format(platform=platform),
        reader_role_name=READER_ROLE_NAME.format(platform=platform),
        administrator_arns=[role(account, n) for n in config.access.administrators],
        break_glass_arn=role(account, config.access.break_glass),
        writers=[
            Writer(
                name=name,
                account_id=writer.account_id,
                role_arns=[role(writer.account_id, r) for r in writer.roles],
                prefixes=config.prefixes_of(name),
            )
            for name, writer in config.writers.items()
        ],
        reader_account_id=config.reader.account_id,
        reader_principal_arns=[role(config.reader.account_id, r) for r in config.reader.roles],
        reader_max_session_hours=config.reader.max_session_hours,
        data_classes=vault_data_classes(config),
        audit_lock_mode=_mode(audit),
        audit_retention_days=audit.days,
        access_log_retention_days=system.days,
        rotation_period_days=config.key_rotation_days,
        tags={"trading-dr:platform": platform, "trading-dr:stack-role": "vault"},
    )


def define_vault_stack(config: VaultStackConfig, stack: str) -> dict[str, Any]:
    """Declare the isolated vault; export and return the ``VaultStackOutputs`` values."""
    provider = aws_provider(config.region)
    invoke = pulumi.InvokeOptions(provider=provider)
    caller = aws.get_caller_identity(opts=invoke)
    account = check_account(config, caller.account_id)
    partition = aws.get_partition(opts=invoke).partition
    args = isolated_vault_args(config, partition)
    vault = IsolatedVault("isolated-vault", args, pulumi.ResourceOptions(provider=provider))
    region = config.region
    outputs: dict[str, Any] = {
        "stack": stack,
        "role": "vault",
        "platform": config.platform,
        "account_id": account,
        "region": region,
        "isolated_vault": {
            "account_id": account,
            "bucket": {"name": vault.vault_bucket_name, "arn": vault.vault_arn, "region": region},
            "kms_key_arn": vault.key_arn,
            "reader_role_arn": vault.reader_role_arn,
            "endpoint_url": None,
        },
        "writers": {
            writer.name: {
                "account_id": writer.account_id,
                "role_arns": writer.role_arns,
                "prefixes": writer.prefixes,
            }
            for writer in args.writers
        },
        "access_log_bucket": {
            "name": vault.logs.bucket_name,
            "arn": vault.logs.arn,
            "region": region,
        },
        "audit_bucket": {"name": vault.audit.bucket_name, "arn": vault.audit.arn, "region": region},
        "trail_arn": vault.trail.arn,
    }
    differ = set(VaultStackOutputs.output_names()) ^ set(outputs)
    if differ:
        raise AssertionError(f"exports and VaultStackOutputs fields differ: {sorted(differ)}")
    for output_name, value in outputs.items():
        pulumi.export(output_name, value)
    return outputs
