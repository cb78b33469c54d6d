"""The vault stack's config (``Pulumi.vault.yaml``, role ``vault``): the real file loads, the role
picks the model, and each kind of bad config is refused naming the key (issue 22)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackmodels import ConfigError, StackConfig
from stackmodels.config import PROJECT, VaultStackConfig, load_any

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
VAULT_ACCOUNT = "210987654321"
PROD_ACCOUNT = "123456789012"


def vault_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.vault.yaml").read_text())
    return document


def problems_of(document: dict[str, Any], tmp_path: Path) -> list[str]:
    path = tmp_path / "Pulumi.vault.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError) as caught:
        load_any(path)
    return caught.value.problems


def with_key(key: str, value: Any) -> dict[str, Any]:
    document = copy.deepcopy(vault_document())
    document["config"][f"{PROJECT}:{key}"] = value
    return document


def test_the_vault_stack_file_loads_its_own_account_region_and_writers() -> None:
    config = load_any(ROOT / "Pulumi.vault.yaml")
    assert isinstance(config, VaultStackConfig)
    assert (config.account_id, config.region, config.role) == (VAULT_ACCOUNT, "us-east-2", "vault")
    assert {name: w.account_id for name, w in config.writers.items()} == {
        "prod": PROD_ACCOUNT,
        "dr": PROD_ACCOUNT,
    }
    assert config.writers["prod"].roles == ["aipx-backup-*-us-east-1"]
    # No prefixes given: every data class's and the catalog's.
    assert config.prefixes_of("prod") == [
        *(f"{name}/" for name in config.data_classes),
        "catalog/",
    ]
    assert (config.reader.account_id, config.reader.roles) == (PROD_ACCOUNT, ["dr-operator"])
    assert config.retention_of("user-data").days == 2555
    assert config.retention_classes[config.audit_retention].days == 1095
    assert "vault-admin" in config.access.administrators


def test_the_vault_keeps_the_same_classes_and_retention_as_prod() -> None:
    vault = VaultStackConfig.load(ROOT / "Pulumi.vault.yaml")
    prod = StackConfig.for_stack("prod", ROOT)
    assert set(vault.data_classes) == set(prod.data_classes)
    for name in prod.data_classes:
        assert vault.retention_of(name) == prod.retention_of(name), name
        assert vault.data_classes[name].lifecycle == prod.data_classes[name].lifecycle, name


def test_the_role_picks_the_model_and_prod_and_dr_stay_stack_configs() -> None:
    assert isinstance(load_any(ROOT / "Pulumi.prod.yaml"), StackConfig)
    assert isinstance(load_any(ROOT / "Pulumi.dr.yaml"), StackConfig)
    # The prod/dr model refuses the vault's role and keys, naming them.
    with pytest.raises(ConfigError) as caught:
        StackConfig.load(ROOT / "Pulumi.vault.yaml")
    text = "\n".join(caught.value.problems)
    assert f"{PROJECT}:role = 'vault'" in text
    assert f"{PROJECT}:writers" in text


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        (
            "writers",
            {"prod": {"account_id": VAULT_ACCOUNT, "roles": ["aipx-backup-*"]}},
            f"{PROJECT}:writers.prod.account_id = '{VAULT_ACCOUNT}': is the vault's own account",
        ),
        (
            "writers",
            {"prod": {"account_id": PROD_ACCOUNT, "roles": ["r"], "prefixes": ["elsewhere/"]}},
            f"{PROJECT}:writers.prod.prefixes.0 = 'elsewhere/': must lie under a data class",
        ),
        (
            "writers",
            {"prod": {"account_id": PROD_ACCOUNT, "roles": []}},
            f"{PROJECT}:writers.prod.roles",
        ),
        (
            "writers",
            {"prod": {"account_id": "1234", "roles": ["r"]}},
            f"{PROJECT}:writers.prod.account_id = '1234'",
        ),
        ("writers", {}, f"{PROJECT}:writers"),
        (
            "reader",
            {"account_id": VAULT_ACCOUNT, "roles": ["dr-operator"]},
            f"{PROJECT}:reader.account_id = '{VAULT_ACCOUNT}': is the vault's own account",
        ),
        (
            "reader",
            {"account_id": PROD_ACCOUNT, "roles": ["dr-operator"], "max_session_hours": 24},
            f"{PROJECT}:reader.max_session_hours = 24",
        ),
        (
            "data_classes",
            {"user-data": {"retention": "forever"}},
            f"{PROJECT}:data_classes.user-data.retention = 'forever': unknown retention class",
        ),
        ("audit_retention", "logs", f"{PROJECT}:audit_retention = 'logs': unknown retention"),
        ("account_id", "not-an-account", f"{PROJECT}:account_id = 'not-an-account'"),
        ("region", "mars-1", f"{PROJECT}:region = 'mars-1'"),
        ("stores", {}, f"{PROJECT}:stores = {{...}}: Extra inputs are not permitted"),
    ],
)
def test_bad_vault_config_is_refused_naming_the_key(
    key: str, value: Any, says: str, tmp_path: Path
) -> None:
    problems = problems_of(with_key(key, value), tmp_path)
    assert any(p.startswith(says) for p in problems), problems


def test_a_missing_writer_or_reader_is_named(tmp_path: Path) -> None:
    document = vault_document()
    del document["config"][f"{PROJECT}:writers"]
    del document["config"][f"{PROJECT}:reader"]
    problems = problems_of(document, tmp_path)
    assert f"{PROJECT}:writers: missing; field required" in problems
    assert f"{PROJECT}:reader: missing; field required" in problems


def test_a_foreign_key_is_refused(tmp_path: Path) -> None:
    document = vault_document()
    document["config"]["vault:account"] = "x"
    assert problems_of(document, tmp_path)[0].startswith("vault:account: unknown key")


def test_prod_and_dr_name_the_vault_stack_optionally() -> None:
    prod = StackConfig.for_stack("prod", ROOT)
    assert prod.isolated_vault_stack is None
    values = prod.model_dump(mode="json")
    for good in ("vault", "acme/trading-dr/vault"):
        assert StackConfig.model_validate({**values, "isolated_vault_stack": good})
    with pytest.raises(ValueError, match="isolated_vault_stack"):
        StackConfig.model_validate({**values, "isolated_vault_stack": "a b"})


def test_an_account_id_handed_over_as_a_number_keeps_its_leading_zeros() -> None:
    """The Pulumi CLI hands config values over as strings and the entry point decodes JSON, so
    ``"012345678901"`` arrives as the number 12345678901."""
    values = {
        k.removeprefix(f"{PROJECT}:"): v for k, v in with_key("account_id", 0)["config"].items()
    }
    values = {k: v for k, v in values.items() if not k.startswith("pulumi:")}
    values["account_id"] = 12345678901
    assert VaultStackConfig.model_validate(values).account_id == "012345678901"
    values["account_id"] = True
    with pytest.raises(ValueError, match="account_id"):
        VaultStackConfig.model_validate(values)
