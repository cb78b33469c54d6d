"""Redis: the seed's ``BGSAVE; sleep 30; copy dump.rdb; gzip; aws s3 cp`` against our backup
(BGSAVE polled until that save is done, the RDB streamed once to S3 and GCS, its keys counted).

The data is a session cache and market data as the seed describes it: session hashes, JSON
quotes and order-book sorted sets, with random tokens and prices so it compresses like real data.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from benchmarks.environment import AWS_CLI, Bench
from benchmarks.measure import Figure, run_measured, shell
from benchmarks.report import PIPELINE_HEADERS, Runs, Section, Table, pipeline_rows, ratio, spread
from drkit.backup.redis import REDIS_CLI

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "ES=F", "NQ=F", "EURUSD", "BTC-USD")
BATCH = 2_000


def populate(bench: Bench, keys: int) -> int:
    """``keys`` keys in three shapes (40% hashes, 40% strings, 20% sorted sets); the key count."""
    with bench.servers.redis.client() as client:
        client.flushall()
        for start in range(0, keys, BATCH):
            pipeline = client.pipeline(transaction=False)
            for n in range(start, min(keys, start + BATCH)):
                shape = n % 5
                if shape < 2:
                    pipeline.hset(
                        f"session:{secrets.token_hex(8)}",
                        mapping={
                            "user_id": str(secrets.randbelow(10**7)),
                            "token": secrets.token_hex(24),
                            "ip": f"10.{n % 250}.{secrets.randbelow(250)}.{secrets.randbelow(250)}",
                            "agent": "aipx-web/4.2",
                            "expires": str(1_735_828_200 + secrets.randbelow(86_400)),
                        },
                    )
                elif shape < 4:
                    quote = {
                        "symbol": SYMBOLS[n % len(SYMBOLS)],
                        "bid": round(100 + secrets.randbelow(100_000) / 1_000, 3),
                        "ask": round(100.01 + secrets.randbelow(100_000) / 1_000, 3),
                        "ts": 1_735_828_200_000 + n,
                    }
                    pipeline.set(f"md:{quote['symbol']}:{n}", json.dumps(quote))
                else:
                    pipeline.zadd(
                        f"book:{SYMBOLS[n % len(SYMBOLS)]}:{n}",
                        {secrets.token_hex(6): secrets.randbelow(10**6) / 100 for _ in range(12)},
                    )
            pipeline.execute()
        return int(client.dbsize())


def seed_script(bench: Bench, directory: Path, stamp: str, bucket: str) -> str:
    """The seed's backup-redis.sh, with ``kubectl exec``/``kubectl cp`` as local calls."""
    redis = bench.servers.redis
    rdb = f"{directory}/redis_{stamp}.rdb"
    return "; ".join(
        [
            f"{REDIS_CLI} -h {redis.host} -p {redis.port} --no-auth-warning BGSAVE",
            f"sleep {bench.options.redis_sleep_s:g}",
            f"cp {redis.rdb_path} {rdb}",
            f"gzip {rdb}",
            f"{AWS_CLI} s3 cp {rdb}.gz s3://{bucket}/redis/",
            f"rm {rdb}.gz",
        ]
    )


def redis_section(bench: Bench) -> Section:
    started = time.monotonic()
    keys = populate(bench, bench.options.redis_keys)
    directory = bench.workdir / "redis-export"
    directory.mkdir(parents=True, exist_ok=True)
    env = bench.tool_env() | {"REDISCLI_AUTH": bench.servers.redis.password}
    shown = seed_script(bench, directory, "N", bench.bucket)
    shown = shown.replace(str(bench.servers.redis.rdb_path), "/data/dump.rdb")
    seed = Runs("seed", bench.show(shown))
    ours = Runs("ours", bench.show(bench.ours("redis-backup")))
    save_seconds: list[float] = []
    rdb_sizes: list[float] = []
    counted_ok = True
    for run in range(bench.options.runs):

        def run_seed(run: int = run) -> None:
            stamp = f"run{run}"
            sample = run_measured(
                shell(seed_script(bench, directory, stamp, bench.bucket)), env=env
            )
            key = f"redis/redis_{stamp}.rdb.gz"
            size = bench.servers.aws.s3().head_object(Bucket=bench.bucket, Key=key)
            seed.add(sample, stored=int(size["ContentLength"]))
            bench.clear(key)

        def run_ours() -> None:
            nonlocal counted_ok
            sample = run_measured(bench.ours("redis-backup"), env=env)
            result = json.loads(sample.stdout)
            ours.add(sample, stored=result["size"])
            save_seconds.append(float(result["consistent_point"].get("bgsave_seconds", 0.0)))
            rdb_sizes.append(float(result["raw_size"]))
            counted_ok &= result["counts"].get("keys") == keys
            bench.clear(result["manifest_key"].rsplit("/", 1)[0] + "/")

        for step in (run_seed, run_ours) if run % 2 == 0 else (run_ours, run_seed):
            step()
    rows = pipeline_rows(seed, ours, None, "stored")
    rows.append(
        [
            "keys counted in the backup (verify)",
            "not counted",
            "all" if counted_ok else "**mismatch**",
            "",
        ]
    )
    saves = Figure(save_seconds)
    sleep = bench.options.redis_sleep_s
    section = Section(
        key="redis",
        title="Redis snapshot",
        summary=(
            f"{keys:,} keys (session hashes, JSON quotes, order-book sorted sets): an RDB of"
            f" {spread(Figure(rdb_sizes), 'MB', 1_000_000)}. The seed triggers BGSAVE, sleeps"
            f" {sleep:g} s, copies `dump.rdb` (its `kubectl cp`), gzips it and uploads it to S3."
            " Ours triggers BGSAVE, polls until that save has finished, and streams the RDB once"
            " to S3 and GCS with zstd, counting the keys of every database on the way."
        ),
        commands={"seed (`kubectl exec`/`cp` made local)": seed.command, "ours": ours.command},
        tables=[Table(PIPELINE_HEADERS, rows)],
        notes=[
            f"The BGSAVE itself took {spread(saves, 's', digits=2)} here: the seed's fixed"
            f" `sleep {sleep:g}` is {sleep / saves.median if saves.median > 0 else 0:,.0f}x"
            " that, and on a dataset whose save takes longer than the sleep it would copy the"
            " previous snapshot without noticing.",
            "The seed goes to S3 only; ours writes S3 and GCS. `/data/dump.rdb` is the seed's"
            " path in the pod; here the copy reads the local server's `dir` (its `kubectl cp`).",
        ],
        headlines=[
            "Redis snapshot: wall time"
            f" {ratio(ours.seconds, seed.seconds, higher_is_better=False)}"
            f" ({spread(ours.seconds, 's')} vs {spread(seed.seconds, 's')}, the seed's"
            f" {sleep:g} s sleep included), stored size"
            f" {ratio(ours.extra('stored'), seed.extra('stored'), higher_is_better=False)}.",
        ],
        data={
            "keys": keys,
            "seed": seed.as_dict(),
            "ours": ours.as_dict(),
            "bgsave_seconds": save_seconds,
            "rdb_bytes": rdb_sizes,
        },
    )
    section.seconds = time.monotonic() - started
    return section
