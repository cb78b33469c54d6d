"""The policy pack entry point (``pulumi preview --policy-pack policy``)."""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file with the pack directory first on sys.path; the rules live in the
# ``policy`` package of the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi_policy import PolicyPack

from policy.pack import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies())
