"""``drkit.local.moto_server``: what the local regions need of AWS that moto lacks, on two real
servers (one per region, as ``invoke local.up`` runs them).

- A multi-Region key made in prod and its replica made in dr's server: a data key sealed in prod
  opens in dr with the replica, as the Kubernetes Secrets of a backup must after prod is lost;
  another key, or a single-Region one, does not open it.
- ``x-amz-replication-status`` as S3 reports it: PENDING on a replicating bucket's object not yet
  copied, COMPLETED once copied, REPLICA on the copy; nothing on a bucket that does not replicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from drkit.local.moto_server import COMPLETED, REPLICA, REPLICA_TAG
from drkit.local.s3 import LocalAws

pytestmark = pytest.mark.integration
PROD, DR = "us-east-1", "us-west-2"


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalAws, LocalAws, Path]]:
    base = tmp_path_factory.mktemp("moto-regions")
    notes = base / "replication"
    notes.mkdir()
    prod, dr = LocalAws(base / "prod", notes), LocalAws(base / "dr", notes)
    prod.start()
    try:
        dr.start()
        try:
            yield prod, dr, notes
        finally:
            dr.stop()
    finally:
        prod.stop()


def test_a_data_key_sealed_in_prod_opens_in_dr_with_the_replica_only(
    regions: tuple[LocalAws, LocalAws, Path],
) -> None:
    prod, dr, _ = regions
    kms_prod: Any = prod.client("kms", PROD)
    kms_dr: Any = dr.client("kms", DR)
    primary = kms_prod.create_key(MultiRegion=True)["KeyMetadata"]
    replica = kms_dr.create_key(
        MultiRegion=True, Tags=[{"TagKey": REPLICA_TAG, "TagValue": primary["Arn"]}]
    )["KeyMetadata"]
    assert primary["KeyId"].startswith("mrk-") and replica["KeyId"] == primary["KeyId"]
    assert replica["Arn"] == primary["Arn"].replace(PROD, DR)
    assert replica["MultiRegionConfiguration"]["MultiRegionKeyType"] == "REPLICA"
    assert replica["MultiRegionConfiguration"]["PrimaryKey"]["Arn"] == primary["Arn"]
    context = {"store": "app-state"}
    sealed = kms_prod.generate_data_key(
        KeyId=primary["Arn"], KeySpec="AES_256", EncryptionContext=context
    )
    opened = kms_dr.decrypt(
        CiphertextBlob=sealed["CiphertextBlob"], KeyId=replica["Arn"], EncryptionContext=context
    )
    assert opened["Plaintext"] == sealed["Plaintext"]
    assert (
        kms_prod.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context)[
            "Plaintext"
        ]
        == sealed["Plaintext"]
    )

    other = kms_dr.create_key(MultiRegion=True)["KeyMetadata"]["Arn"]
    single = kms_dr.create_key()["KeyMetadata"]["Arn"]
    for key in (other, single):
        with pytest.raises(ClientError):
            kms_dr.decrypt(
                CiphertextBlob=sealed["CiphertextBlob"], KeyId=key, EncryptionContext=context
            )
    with pytest.raises(ClientError, match="InvalidCiphertext"):
        kms_dr.decrypt(
            CiphertextBlob=sealed["CiphertextBlob"],
            KeyId=replica["Arn"],
            EncryptionContext={"store": "another"},
        )


def test_a_single_region_key_still_round_trips(regions: tuple[LocalAws, LocalAws, Path]) -> None:
    prod, _, _ = regions
    kms: Any = prod.client("kms", PROD)
    key = kms.create_key()["KeyMetadata"]
    assert len(key["KeyId"]) == 36
    blob = kms.encrypt(KeyId=key["Arn"], Plaintext=b"secret")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"


def test_replication_status_follows_what_the_copier_noted(
    regions: tuple[LocalAws, LocalAws, Path],
) -> None:
    prod, dr, notes = regions
    s3_prod: Any = prod.client("s3", PROD)
    s3_dr: Any = dr.client("s3", DR)
    s3_prod.create_bucket(Bucket="vault-prod")
    s3_prod.create_bucket(Bucket="plain")
    s3_dr.create_bucket(Bucket="vault-dr", CreateBucketConfiguration={"LocationConstraint": DR})
    for key in ("a", "b"):
        s3_prod.put_object(Bucket="vault-prod", Key=key, Body=b"x")
    s3_prod.put_object(Bucket="plain", Key="a", Body=b"x")
    assert "ReplicationStatus" not in s3_prod.head_object(Bucket="vault-prod", Key="a")

    (notes / f"vault-prod{COMPLETED}").write_text("a\n")
    s3_dr.put_object(Bucket="vault-dr", Key="a", Body=b"x")
    (notes / f"vault-dr{REPLICA}").write_text("a\n")

    assert s3_prod.head_object(Bucket="vault-prod", Key="a")["ReplicationStatus"] == "COMPLETED"
    assert s3_prod.head_object(Bucket="vault-prod", Key="b")["ReplicationStatus"] == "PENDING"
    assert s3_prod.get_object(Bucket="vault-prod", Key="b")["ReplicationStatus"] == "PENDING"
    assert s3_dr.head_object(Bucket="vault-dr", Key="a")["ReplicationStatus"] == "REPLICA"
    assert "ReplicationStatus" not in s3_prod.head_object(Bucket="plain", Key="a")
