"""The stack outputs model: what ops reads, with errors that name the output and the stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackmodels import OutputsError, StackOutputs
from stackmodels.config import StoreKind
from stackmodels.outputs import (
    SELF_HOSTED,
    SERVICE_KINDS,
    SERVICE_NAMES,
    StoreEndpoint,
    StoreService,
)

pytestmark = pytest.mark.unit


def valid_outputs() -> dict[str, Any]:
    return {
        "stack": "dr",
        "role": "dr",
        "region": "us-west-2",
        "platform": "aipx",
        "backup_vault": {
            "name": "aipx-backup-vault-us-west-2",
            "arn": "arn:aws:s3:::aipx-backup-vault-us-west-2",
            "region": "us-west-2",
        },
        "vault_key_arn": "arn:aws:kms:us-west-2:123456789012:key/mrk-0123456789abcdef",
        "audit_bucket": {
            "name": "aipx-audit-us-west-2",
            "arn": "arn:aws:s3:::aipx-audit-us-west-2",
            "region": "us-west-2",
        },
        "gcs_mirror_bucket": "aipx-backup-mirror",
        "k8s_namespace": "aipx",
        "k8s_backup_namespace": "dr-backups",
        "stores": {"trading-db": {"kind": "postgres", "host": "db.example", "port": 5432}},
    }


def test_valid_outputs_parse() -> None:
    outputs = StackOutputs.parse(valid_outputs(), "dr")
    assert outputs.backup_vault.name == "aipx-backup-vault-us-west-2"
    assert outputs.stores["trading-db"].port == 5432
    assert outputs.aws_endpoint_url is None


def test_missing_output_names_the_output_and_the_stack() -> None:
    values = valid_outputs()
    del values["vault_key_arn"]
    with pytest.raises(OutputsError) as caught:
        StackOutputs.parse(values, "dr")
    assert "stack 'dr'" in str(caught.value)
    assert caught.value.problems == ["output 'vault_key_arn' is missing"]


def test_mistyped_output_names_the_output_and_the_value() -> None:
    values = valid_outputs()
    values["backup_vault"]["arn"] = "aipx-backup-vault"
    values["stores"]["trading-db"]["port"] = "fivefourthreetwo"
    with pytest.raises(OutputsError) as caught:
        StackOutputs.parse(values, "prod")
    problems = caught.value.problems
    assert any(p.startswith("output 'backup_vault.arn' = 'aipx-backup-vault'") for p in problems)
    assert any(
        p.startswith("output 'stores.trading-db.port' = 'fivefourthreetwo'") for p in problems
    )


def test_an_output_infra_renamed_is_flagged() -> None:
    values = valid_outputs()
    values["vault_bucket"] = values.pop("backup_vault")
    with pytest.raises(OutputsError) as caught:
        StackOutputs.parse(values, "prod")
    assert "output 'vault_bucket' is not one this kit knows (renamed in infra?)" in (
        caught.value.problems
    )
    assert "output 'backup_vault' is missing" in caught.value.problems


def test_round_trip_through_a_file(tmp_path: Path) -> None:
    outputs = StackOutputs.parse(valid_outputs(), "dr")
    path = tmp_path / "dr.json"
    outputs.write(path)
    assert StackOutputs.from_file(path, "dr") == outputs


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(OutputsError, match="not found"):
        StackOutputs.from_file(tmp_path / "none.json", "dr")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(OutputsError, match="is not JSON"):
        StackOutputs.from_file(bad, "dr")
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([1]))
    with pytest.raises(OutputsError, match="expected a JSON object"):
        StackOutputs.from_file(listing, "dr")


def test_pulumi_cli_absent_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(OutputsError) as refused:
        StackOutputs.from_pulumi("prod")
    assert (
        str(refused.value)
        .splitlines()[-1]
        .endswith(
            "the pulumi CLI is not on PATH (looked in $PATH): install it from "
            "https://www.pulumi.com/docs/install/ (it is not on PyPI) and run `pulumi login`, or "
            "pass --outputs FILE"
        )
    )


@pytest.mark.parametrize("kind", [k.value for k in StoreKind])
def test_an_endpoint_without_a_service_is_its_kinds_self_hosted_server(kind: str) -> None:
    endpoint = StoreEndpoint.model_validate({"kind": kind, "host": "h", "port": 1})
    assert endpoint.service is SELF_HOSTED[StoreKind(kind)]
    assert SERVICE_KINDS[endpoint.service] is StoreKind(kind)


def test_every_service_serves_one_kind_and_has_a_name() -> None:
    assert set(SERVICE_KINDS) == set(SERVICE_NAMES) == set(StoreService)
    assert set(SELF_HOSTED) == set(StoreKind)


def test_an_endpoint_whose_service_serves_another_kind_is_refused_in_one_line() -> None:
    values = valid_outputs()
    values["stores"]["trading-db"]["service"] = "elasticache"
    with pytest.raises(OutputsError) as caught:
        StackOutputs.parse(values, "dr")
    assert caught.value.problems == [
        "output 'stores.trading-db': service 'elasticache' (an ElastiCache replication group) "
        "serves kind 'redis', not the exported kind 'postgres'"
    ]


def test_outputs_exporting_a_store_as_another_kind_than_the_config_are_refused() -> None:
    outputs = StackOutputs.parse(valid_outputs(), "dr")
    outputs.check_kinds({"trading-db": StoreKind.POSTGRES}, "Pulumi.dr.yaml")  # agrees
    with pytest.raises(OutputsError) as caught:
        outputs.check_kinds({"trading-db": StoreKind.REDIS}, "Pulumi.dr.yaml")
    assert caught.value.problems == [
        "store 'trading-db' is of kind 'redis' in Pulumi.dr.yaml, but the outputs export a "
        "self-hosted PostgreSQL for it (service 'postgresql', kind 'postgres')"
    ]
