"""Run the real program once per stack (prod, then dr fed with prod's exports) for the session."""

from __future__ import annotations

import pytest
from program_harness import StackRun, config_variant, run_stack


@pytest.fixture(scope="session")
def prod() -> StackRun:
    return run_stack("prod")


@pytest.fixture(scope="session")
def dr(prod: StackRun) -> StackRun:
    return run_stack("dr", {"prod": prod.outputs})


@pytest.fixture(scope="session", params=["prod", "dr"])
def run(request: pytest.FixtureRequest, prod: StackRun, dr: StackRun) -> StackRun:
    return prod if request.param == "prod" else dr


@pytest.fixture(scope="session")
def dr_failed_over(prod: StackRun) -> StackRun:
    """dr after a failover is written back to config (``active_region`` = dr's region)."""
    return run_stack("dr", {"prod": prod.outputs}, config_variant("dr", active_region="us-west-2"))


@pytest.fixture(scope="session")
def prod_failed_over() -> StackRun:
    """prod, back after the failover, with the same ``active_region``."""
    return run_stack("prod", config=config_variant("prod", active_region="us-west-2"))


@pytest.fixture(scope="session")
def prod_adopting() -> StackRun:
    """prod adopting an existing cluster as the global database's primary."""
    aurora = config_variant("prod").aurora
    assert aurora is not None
    adopted = aurora.model_copy(update={"adopt_primary_cluster_identifier": "legacy-orders-db"})
    return run_stack("prod", config=config_variant("prod", aurora=adopted.model_dump(mode="json")))


@pytest.fixture(scope="session")
def vault() -> StackRun:
    """The isolated backup account's stack (issue 22), in an account of its own."""
    return run_stack("vault")


@pytest.fixture(scope="session")
def prod_isolated(vault: StackRun) -> StackRun:
    """prod writing its third copy to the vault stack (``isolated_vault_stack: vault``)."""
    return run_stack(
        "prod", {"vault": vault.outputs}, config_variant("prod", isolated_vault_stack="vault")
    )


@pytest.fixture(scope="session")
def dr_isolated(vault: StackRun, prod_isolated: StackRun) -> StackRun:
    return run_stack(
        "dr",
        {"prod": prod_isolated.outputs, "vault": vault.outputs},
        config_variant("dr", isolated_vault_stack="vault"),
    )
