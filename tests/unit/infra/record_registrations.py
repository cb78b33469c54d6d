"""Record every resource registration of both stacks and their config variants, as JSON.

A refactor of the program or the components must not change what the engine is asked to create:
run this before and after and compare the files byte for byte::

    .venv/bin/python tests/unit/infra/record_registrations.py /tmp/before.json
    ... refactor ...
    .venv/bin/python tests/unit/infra/record_registrations.py /tmp/after.json
    cmp /tmp/before.json /tmp/after.json

Each registration is its type, name, inputs, the region of its provider, its parent's URN and
the options the engine received (protect, ignore_changes, import, depends_on); outputs are the
stack exports. Runs are sorted by (type, name) because registrations complete concurrently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from program_harness import StackRun, config_variant, run_stack

from stackmodels import StackConfig


def variants() -> list[tuple[str, str, StackConfig | None, bool]]:
    """(label, stack, config or None for the file, whether it reads prod's exports)."""
    aurora = config_variant("prod").aurora
    assert aurora is not None
    adopted = aurora.model_copy(update={"adopt_primary_cluster_identifier": "legacy-orders-db"})
    return [
        ("prod", "prod", None, False),
        ("dr", "dr", None, True),
        ("dr-failed-over", "dr", config_variant("dr", active_region="us-west-2"), True),
        ("prod-failed-over", "prod", config_variant("prod", active_region="us-west-2"), False),
        (
            "prod-adopting",
            "prod",
            config_variant("prod", aurora=adopted.model_dump(mode="json")),
            False,
        ),
        ("prod-no-replication", "prod", config_variant("prod", replicate_vault=False), False),
    ]


def describe(run: StackRun) -> dict[str, Any]:
    resources = [
        {
            "type": r.type,
            "name": r.name,
            "region": r.region,
            "inputs": r.inputs,
            "options": None
            if r.options is None
            else {
                "protect": r.options.protect,
                "ignore_changes": list(r.options.ignore_changes),
                "import": r.options.import_id,
                "depends_on": sorted(r.options.depends_on),
                "parent": r.options.parent,
                "provider": r.options.provider,
            },
        }
        for r in run.resources
    ]
    resources.sort(key=lambda r: (r["type"], r["name"]))
    return {"resources": resources, "outputs": run.outputs}


def record() -> dict[str, Any]:
    prod = run_stack("prod")
    recorded: dict[str, Any] = {}
    for label, stack, config, reads_prod in variants():
        run = run_stack(stack, {"prod": prod.outputs} if reads_prod else None, config)
        recorded[label] = describe(run)
    # The isolated backup account (issue 22): its stack, and prod and dr writing to it.
    vault = run_stack("vault")
    recorded["vault"] = describe(vault)
    isolated = config_variant("prod", isolated_vault_stack="vault")
    prod_isolated = run_stack("prod", {"vault": vault.outputs}, isolated)
    recorded["prod-isolated"] = describe(prod_isolated)
    dr_isolated = config_variant("dr", isolated_vault_stack="vault")
    outputs = {"prod": prod_isolated.outputs, "vault": vault.outputs}
    recorded["dr-isolated"] = describe(run_stack("dr", outputs, dr_isolated))
    return recorded


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: record_registrations.py OUTPUT.json", file=sys.stderr)
        return 2
    text = json.dumps(record(), indent=1, sort_keys=True, default=repr)
    Path(argv[0]).write_text(text + "\n")
    print(f"{argv[0]}: {len(text)} characters")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
