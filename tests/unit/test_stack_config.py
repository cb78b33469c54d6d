"""The stack config model: the real stack files load, and each kind of bad config is named."""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackmodels import ConfigError, StackConfig
from stackmodels.config import PROJECT, Role

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def prod_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    return document


def load(document: dict[str, Any], tmp_path: Path) -> StackConfig:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump(document))
    return StackConfig.load(path)


def problems_of(document: dict[str, Any], tmp_path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(document, tmp_path)
    return caught.value.problems


def test_prod_stack_file_loads_with_the_seed_objectives() -> None:
    config = StackConfig.for_stack("prod", ROOT)
    assert config.role is Role.PRIMARY
    assert (config.region, config.peer_region, config.primary_region) == (
        "us-east-1",
        "us-west-2",
        "us-east-1",
    )
    objectives = {name: (dc.rto, dc.rpo) for name, dc in config.data_classes.items()}
    assert objectives == {
        "trading-signals": (timedelta(minutes=1), timedelta(seconds=30)),
        "market-data": (timedelta(minutes=5), timedelta(minutes=1)),
        "user-data": (timedelta(minutes=15), timedelta(minutes=15)),
        "historical-market-data": (timedelta(hours=4), timedelta(hours=1)),
        "app-config": (timedelta(minutes=30), timedelta(minutes=5)),
        "monitoring-logs": (timedelta(hours=1), timedelta(minutes=15)),
    }
    assert config.retention_of("user-data").days == 2555
    assert config.retention_of("app-config").days == 1095
    assert config.retention_of("monitoring-logs").days == 365
    assert config.data_classes["user-data"].lifecycle.tiers() == [
        ("STANDARD_IA", 30),
        ("GLACIER", 90),
        ("DEEP_ARCHIVE", 365),
    ]


def test_prod_schedules_are_the_seed_defaults() -> None:
    stores = StackConfig.for_stack("prod", ROOT).stores
    assert stores["trading-db"].schedule == "*/15 * * * *"
    assert stores["event-stream"].schedule == "0 * * * *"
    assert stores["session-cache"].schedule == "0 */6 * * *"
    assert stores["app-state"].schedule == "0 * * * *"
    assert {store.kind.value for store in stores.values()} == {
        "postgres",
        "kafka",
        "redis",
        "kubernetes",
        "timeseries",
    }


def test_dr_stack_reads_prod_and_mirrors_its_regions() -> None:
    dr = StackConfig.for_stack("dr", ROOT)
    prod = StackConfig.for_stack("prod", ROOT)
    assert dr.role is Role.DR
    assert dr.primary_stack == "prod"
    assert (dr.region, dr.peer_region) == (prod.peer_region, prod.region)
    assert dr.primary_region == prod.region
    assert dr.data_classes == prod.data_classes


def test_after_a_failover_the_config_names_the_new_primary(tmp_path: Path) -> None:
    document = prod_document()
    document["config"][f"{PROJECT}:active_region"] = "us-west-2"
    assert load(document, tmp_path).primary_region == "us-west-2"


def test_platform_wide_objectives_of_the_second_seed_are_a_valid_config(tmp_path: Path) -> None:
    """004_6675a288b0466223.txt: one RTO of 4 h and RPO of 15 min for the whole platform."""
    document = prod_document()
    config = document["config"]
    config[f"{PROJECT}:data_classes"] = {
        "platform": {"rto": "4h", "rpo": "15m", "retention": "financial"}
    }
    config[f"{PROJECT}:audit_data_class"] = "platform"
    schedules = {
        "trading-db": "*/15 * * * *",
        "event-stream": "*/15 * * * *",
        "session-cache": "*/15 * * * *",
        "app-state": "*/15 * * * *",
        "market-ticks": "*/15 * * * *",
    }
    for name, store in config[f"{PROJECT}:stores"].items():
        store.update(data_class="platform", schedule=schedules[name])
        store.pop("continuous_protection", None)
    loaded = load(document, tmp_path)
    assert set(loaded.data_classes) == {"platform"}
    assert loaded.data_classes["platform"].rto == timedelta(hours=4)


def test_the_second_seed_as_written_is_caught_slower_than_its_own_rpo(tmp_path: Path) -> None:
    """004 backs Kafka up hourly and Redis every 6 h under a 15-minute RPO: the rule names both."""
    document = prod_document()
    config = document["config"]
    config[f"{PROJECT}:data_classes"] = {
        "platform": {"rto": "4h", "rpo": "15m", "retention": "financial"}
    }
    config[f"{PROJECT}:audit_data_class"] = "platform"
    for store in config[f"{PROJECT}:stores"].values():
        store["data_class"] = "platform"
        store.pop("continuous_protection", None)
    problems = problems_of(document, tmp_path)
    assert any(
        p.startswith("trading-dr:stores.event-stream.schedule = '0 * * * *'") and "1h apart" in p
        for p in problems
    )
    assert any(
        p.startswith("trading-dr:stores.session-cache.schedule = '0 */6 * * *'") and "6h apart" in p
        for p in problems
    )
    assert not any("trading-db" in p for p in problems)


def mutate(path: list[str], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(prod_document())
    node: Any = document["config"]
    key = f"{PROJECT}:{path[0]}"
    if len(path) == 1:
        node[key] = value
        return document
    node = node[key]
    for part in path[1:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


BAD_CONFIGS: list[tuple[str, list[str], Any, str, str]] = [
    # (case, key path, bad value, key named in the message, what the message says)
    ("unknown role", ["role"], "standby", "trading-dr:role = 'standby'", "'primary' or 'dr'"),
    (
        "region not an AWS region",
        ["region"],
        "useast1",
        "trading-dr:region = 'useast1'",
        "should match pattern",
    ),
    (
        "peer region equals region",
        ["peer_region"],
        "us-east-1",
        "trading-dr:peer_region = 'us-east-1'",
        "must differ from region",
    ),
    (
        "rpo not a duration",
        ["data_classes", "user-data", "rpo"],
        "15 minutes",
        "trading-dr:data_classes.user-data.rpo = '15 minutes'",
        "30s, 15m, 4h or 7d",
    ),
    (
        "rto of zero",
        ["data_classes", "market-data", "rto"],
        "0m",
        "trading-dr:data_classes.market-data.rto = '0m'",
        "must be positive",
    ),
    (
        "schedule slower than the rpo",
        ["stores", "market-ticks", "schedule"],
        "0 */2 * * *",
        "trading-dr:stores.market-ticks.schedule = '0 */2 * * *'",
        "slower than the RPO 1h of data class 'historical-market-data'",
    ),
    (
        "cron with four fields",
        ["stores", "trading-db", "schedule"],
        "*/15 * * *",
        "trading-dr:stores.trading-db.schedule = '*/15 * * *'",
        "has 4 fields, not 5",
    ),
    (
        "cron minute out of range",
        ["stores", "trading-db", "schedule"],
        "75 * * * *",
        "trading-dr:stores.trading-db.schedule = '75 * * * *'",
        "outside 0-59",
    ),
    (
        "retention shorter than the last tier",
        ["retention_classes", "system", "days"],
        90,
        "trading-dr:data_classes.monitoring-logs.retention = 'system'",
        "not longer than the last lifecycle tier at 90 days",
    ),
    (
        "lifecycle tiers out of order",
        ["data_classes", "user-data", "lifecycle"],
        {"standard_ia_after_days": 30, "glacier_after_days": 400, "deep_archive_after_days": 365},
        "trading-dr:data_classes.user-data.lifecycle",
        "colder storage later",
    ),
    (
        "standard-ia before 30 days",
        ["data_classes", "user-data", "lifecycle"],
        {"standard_ia_after_days": 7},
        "trading-dr:data_classes.user-data.lifecycle.standard_ia_after_days = 7",
        "greater than or equal to 30",
    ),
    (
        "store of an unknown data class",
        ["stores", "trading-db", "data_class"],
        "orders",
        "trading-dr:stores.trading-db.data_class = 'orders'",
        "unknown data class; allowed: [",
    ),
    (
        "unknown store kind",
        ["stores", "trading-db", "kind"],
        "mysql",
        "trading-dr:stores.trading-db.kind = 'mysql'",
        "'postgres', 'kafka', 'redis'",
    ),
    (
        "unknown retention class",
        ["data_classes", "user-data", "retention"],
        "forever",
        "trading-dr:data_classes.user-data.retention = 'forever'",
        "unknown retention class",
    ),
    (
        "unknown field",
        ["stores", "trading-db", "schedul"],
        "*/5 * * * *",
        "trading-dr:stores.trading-db.schedul = '*/5 * * * *'",
        "Extra inputs are not permitted",
    ),
    (
        "primary naming a stack to read",
        ["primary_stack"],
        "dr",
        "trading-dr:primary_stack = 'dr'",
        "prod never reads dr",
    ),
    (
        "active region outside the pair",
        ["active_region"],
        "eu-west-1",
        "trading-dr:active_region = 'eu-west-1'",
        "must be one of ['us-east-1', 'us-west-2']",
    ),
    (
        "platform name with capitals",
        ["platform"],
        "AIPX",
        "trading-dr:platform = 'AIPX'",
        "should match pattern",
    ),
    (
        "isolated copy neither required nor optional",
        ["stores", "trading-db", "isolated_copy"],
        "sometimes",
        "trading-dr:stores.trading-db.isolated_copy = 'sometimes'",
        "use required or optional",
    ),
]


def test_the_isolated_copy_is_required_unless_a_store_says_optional(tmp_path: Path) -> None:
    config = load(prod_document(), tmp_path)
    assert {store.isolated_copy.value for store in config.stores.values()} == {"required"}
    optional = load(mutate(["stores", "app-state", "isolated_copy"], "optional"), tmp_path)
    assert optional.stores["app-state"].isolated_copy.value == "optional"
    assert optional.stores["trading-db"].isolated_copy.value == "required"


@pytest.mark.parametrize(
    ("case", "path", "value", "key", "allowed"), BAD_CONFIGS, ids=[case[0] for case in BAD_CONFIGS]
)
def test_bad_config_names_key_value_and_what_is_allowed(
    tmp_path: Path, case: str, path: list[str], value: Any, key: str, allowed: str
) -> None:
    problems = problems_of(mutate(path, value), tmp_path)
    matching = [p for p in problems if p.startswith(key)]
    assert matching, f"{case}: no problem names {key!r}; got {problems}"
    assert any(allowed in p for p in matching), f"{case}: {matching}"


def test_missing_required_key_is_named(tmp_path: Path) -> None:
    document = prod_document()
    del document["config"][f"{PROJECT}:gcp"]
    assert problems_of(document, tmp_path) == ["trading-dr:gcp: missing; field required"]


def test_dr_without_a_primary_stack_is_refused(tmp_path: Path) -> None:
    document = prod_document()
    document["config"][f"{PROJECT}:role"] = "dr"
    problems = problems_of(document, tmp_path)
    assert any(
        p.startswith("trading-dr:primary_stack = None") and "must name the prod stack" in p
        for p in problems
    )


def test_key_outside_the_project_namespace_is_refused(tmp_path: Path) -> None:
    document = prod_document()
    document["config"]["tradingdr:region"] = "us-east-1"
    assert any(
        p.startswith("tradingdr:region: unknown key") for p in problems_of(document, tmp_path)
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    document = mutate(["role"], "standby")
    config = document["config"]
    config[f"{PROJECT}:stores"]["market-ticks"]["schedule"] = "0 */3 * * *"
    config[f"{PROJECT}:data_classes"]["user-data"]["rpo"] = "soon"
    problems = problems_of(document, tmp_path)
    assert len(problems) == 2  # field errors come first; rules run once fields are valid
    fixed = mutate(["stores", "market-ticks", "schedule"], "0 */3 * * *")
    fixed["config"][f"{PROJECT}:peer_region"] = "us-east-1"
    assert len(problems_of(fixed, tmp_path)) == 2


def test_unreadable_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        StackConfig.load(tmp_path / "Pulumi.nope.yaml")
    broken = tmp_path / "Pulumi.broken.yaml"
    broken.write_text("config: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        StackConfig.load(broken)
