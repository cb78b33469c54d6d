"""Two entry points in one file.

``pulumi preview --policy-pack policy`` runs this file as the CrossGuard pack (the policy host
passes the engine's address); ``python -m policy check --stack S --resources FILE.json`` runs the
same rule set (``policy.registry``) without the Pulumi CLI (``policy.check``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI runs this file with the pack directory first on sys.path; the rules live in the
# ``policy`` package of the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if len(sys.argv) > 1 and sys.argv[1] == "check":
    from policy.check import main

    sys.exit(main(sys.argv[2:]))
else:
    from pulumi_policy import PolicyPack

    from policy.pack import PACK_NAME, policies

    PolicyPack(name=PACK_NAME, policies=policies())
