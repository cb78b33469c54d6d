"""The isolated backup account, locally: a third AWS emulator standing for the ``vault`` stack's
account (issue 22), with its vault bucket, its own key and the reader role restores assume.

The emulator enforces the account's rules (``drkit.local.moto_server.isolated_refusal``): only its
own administrator role may delete, overwrite, shorten a retention or change the bucket's rules.
Everything here is created through that role, assumed as AWS's organization access role is; the
production stacks' credentials (moto's default account) only write, create-only, across accounts.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from drkit.local.moto_server import VAULT_ADMIN_ROLE
from drkit.local.s3 import LocalAws
from stackmodels import StackConfig
from stackmodels.outputs import Bucket, IsolatedVault

ISOLATED_ACCOUNT = "222233334444"
"""The isolated backup account's id, locally (moto's default account, 123456789012, is prod's)."""
READER_ROLE = "drkit-vault-reader"


def role_session(aws: LocalAws, role_arn: str, region: str, name: str) -> boto3.session.Session:
    """A session acting as ``role_arn`` (STS AssumeRole on ``aws``), from the dummy keys."""
    sts: Any = aws.client("sts", region)
    found = sts.assume_role(RoleArn=role_arn, RoleSessionName=name)["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=found["AccessKeyId"],
        aws_secret_access_key=found["SecretAccessKey"],
        aws_session_token=found["SessionToken"],
        region_name=region,
    )


def admin_client(aws: LocalAws, service: str, region: str) -> Any:
    """A client acting as the isolated account's administrator role."""
    role = f"arn:aws:iam::{aws.isolated_account or ISOLATED_ACCOUNT}:role/{VAULT_ADMIN_ROLE}"
    session = role_session(aws, role, region, "drkit-local-provision")
    return session.client(  # type: ignore[call-overload]
        service, endpoint_url=aws.endpoint_url, config=Config(retries={"max_attempts": 2})
    )


def provision_isolated(aws: LocalAws, config: StackConfig, suffix: str) -> IsolatedVault:
    """The vault bucket (Object Lock COMPLIANCE for the longest retention class, so versioned),
    its key and the reader role, in the isolated account's emulator; as the outputs of the
    ``vault`` stack, with its endpoint."""
    account = aws.isolated_account or ISOLATED_ACCOUNT
    region = config.peer_region  # a region of its own, apart from prod's
    name = f"{config.platform}-isolated-vault-{region}-{suffix}"
    s3 = admin_client(aws, "s3", region)
    location: Any = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3.create_bucket(Bucket=name, ObjectLockEnabledForBucket=True, **location)
    longest = max(config.retention_of(c).days for c in config.data_classes)
    s3.put_object_lock_configuration(
        Bucket=name,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": longest}},
        },
    )
    kms = admin_client(aws, "kms", region)
    key_arn = kms.create_key(Description=f"{config.platform} isolated vault key (local)")[
        "KeyMetadata"
    ]["Arn"]
    iam = admin_client(aws, "iam", region)
    trust = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",'
        '"Principal":{"AWS":"arn:aws:iam::123456789012:root"}}]}'
    )
    role_name = f"{READER_ROLE}-{suffix}"
    reader = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    return IsolatedVault(
        account_id=account,
        bucket=Bucket(name=name, arn=f"arn:aws:s3:::{name}", region=region),
        kms_key_arn=key_arn,
        reader_role_arn=str(reader),
        endpoint_url=aws.endpoint_url,
    )
