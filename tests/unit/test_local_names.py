"""The local stack's stable names: moves from parallel failover steps are never lost."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from drkit.local.names import StableName, names_path, point, read_names


def test_names_moved_at_once_by_parallel_steps_are_all_kept(tmp_path: Path) -> None:
    stores = [f"store-{n}" for n in range(12)]
    path = names_path(tmp_path)
    path.parent.mkdir(parents=True)
    prod = {
        s: {"region": "prod", "host": "127.0.0.1", "port": 1000 + n} for n, s in enumerate(stores)
    }
    path.write_text(json.dumps(prod))

    def move(numbered: tuple[int, str]) -> None:
        n, store = numbered
        for _ in range(20):  # each store moved many times, all at once
            point(tmp_path, store, StableName(region="dr", host="127.0.0.1", port=2000 + n))

    with ThreadPoolExecutor(len(stores)) as pool:
        list(pool.map(move, enumerate(stores)))

    names = read_names(tmp_path)
    assert {store: (name.region, name.port) for store, name in names.items()} == {
        store: ("dr", 2000 + n) for n, store in enumerate(stores)
    }
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == []
