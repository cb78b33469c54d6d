"""Render the PrometheusRule the real program declares into a file ``promtool`` reads.

The rules file is the PrometheusRule's ``spec`` (``groups:``) as the prod program under the mocks
declares it (the active stack holds the rules), so promtool checks what would be deployed, not a
copy. ``python tests/unit/infra/prometheus_render.py --out DIR`` writes ``DIR/backup-rules.yml``
and copies ``tests/promtool/backup-rules.test.yml`` next to it (promtool resolves ``rule_files``
from the test file's directory); the PR workflow then runs ``promtool check rules`` and
``promtool test rules`` on them, as ``test_prometheus_rules_promtool`` does.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from program_harness import ROOT, StackRun, run_stack

PROMETHEUS_RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
RULES_FILE = "backup-rules.yml"
TEST_FILE = ROOT / "tests" / "promtool" / "backup-rules.test.yml"


def rules_document(run: StackRun) -> str:
    [rule] = run.of_type(PROMETHEUS_RULE)
    return yaml.safe_dump({"groups": rule.inputs["spec"]["groups"]}, sort_keys=False)


def render(run: StackRun, out: Path) -> tuple[Path, Path]:
    """Write the rules and the promtool test into ``out``; return (rules file, test file)."""
    out.mkdir(parents=True, exist_ok=True)
    rules = out / RULES_FILE
    rules.write_text(rules_document(run))
    test = out / TEST_FILE.name
    shutil.copyfile(TEST_FILE, test)
    return rules, test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    rules, test = render(run_stack("prod"), args.out)
    print(f"{rules}\n{test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
