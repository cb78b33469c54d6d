"""The harness itself: a deprecated resource or argument fails a run, unknown calls fail."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from program_harness import RecordingMocks, run_program

pytestmark = pytest.mark.unit


def test_a_deprecated_resource_fails_the_run() -> None:
    def program() -> dict[str, Any]:
        provider = aws.Provider("aws", region="us-east-1")
        aws.s3.BucketV2("old", opts=pulumi.ResourceOptions(provider=provider))
        return {}

    with pytest.raises((AssertionError, DeprecationWarning), match=r"(?i)deprecat"):
        run_program(program, "deprecated", RecordingMocks())


def test_a_deprecation_logged_by_pulumi_fails_the_run() -> None:
    def program() -> dict[str, Any]:
        pulumi.log.warn("some_argument is deprecated: use another one")
        return {}

    with pytest.raises(AssertionError, match="deprecat"):
        run_program(program, "deprecated-log", RecordingMocks())


def test_an_unanswered_data_source_fails_the_run() -> None:
    def program() -> dict[str, Any]:
        provider = aws.Provider("aws", region="us-east-1")
        aws.get_availability_zones(opts=pulumi.InvokeOptions(provider=provider))
        return {}

    with pytest.raises(Exception, match="do not answer"):
        run_program(program, "unanswered", RecordingMocks())


def test_entry_point_reads_every_config_key_from_pulumi_config() -> None:
    """``infra/__main__.py`` as the CLI runs it: config values arrive as strings (JSON or plain)."""
    import json
    import runpy

    import yaml
    from program_harness import ROOT

    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    config = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in document["config"].items()
    }
    mocks = RecordingMocks()

    def program() -> dict[str, Any]:
        pulumi.runtime.set_all_config(config)
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
        return {}

    run_program(program, "prod", mocks)
    [vault] = [r for r in mocks.resources if r.name == "backup-vault-bucket"]
    assert vault.inputs["bucket"] == "aipx-backup-vault-123456789012-us-east-1"
    assert any(r.type == "gcp:storage/bucket:Bucket" for r in mocks.resources)


def _prod_config_strings() -> dict[str, str]:
    import json

    import yaml
    from program_harness import ROOT

    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    return {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in document["config"].items()
    }


@pytest.mark.reliability
def test_entry_point_refuses_a_misspelt_key_as_config_check_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key ``pulumi up`` would have ignored fails the program with config.check's own line."""
    import runpy

    from program_harness import ROOT

    from stackmodels import ConfigError

    config = _prod_config_strings()
    config["trading-dr:retention_clases"] = config["trading-dr:retention_classes"]
    mocks = RecordingMocks()

    def program() -> dict[str, Any]:
        pulumi.runtime.set_all_config(config)
        runpy.run_path(str(ROOT / "infra" / "__main__.py"), run_name="__main__")
        return {}

    with pytest.raises(ConfigError) as refused:
        run_program(program, "prod", mocks)
    assert refused.value.problems == [
        "trading-dr:retention_clases = {...}: Extra inputs are not permitted"
    ]
    assert mocks.resources == []  # refused before anything is declared

    # The CLI's language host hands the config over in PULUMI_CONFIG: read from there too.
    del config["trading-dr:retention_clases"]
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"tradingdr:platform": "aipx"}))
    with pytest.raises(ConfigError) as foreign:
        run_program(program, "prod", RecordingMocks())
    assert foreign.value.problems == [
        "tradingdr:platform: unknown key; keys of this project are trading-dr:<field>, or a "
        "provider's namespace (aws:, gcp:, kubernetes:, pulumi:)"
    ]
