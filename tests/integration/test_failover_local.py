"""``invoke failover --stack local --to dr`` on the real two-region local stack, prod killed.

One stack for the module (``local.up``, as test_local_regions starts it, with a cluster per region
for the ``kafka-bootstrap`` ConfigMap and the pilot-light workloads). The tests run in file order:
prod is killed with SIGKILL, a failover is itself killed mid-promotion and resumed, then a second
failover is a no-op, and the killed prod PostgreSQL comes back without the names leading to it.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis
from confluent_kafka import Producer

from drkit.failover.command import switch_regions
from drkit.failover.kinds.mirrormaker2 import FORKS
from drkit.failover.kinds.postgres_streaming import CHECK_TABLE
from drkit.failover.local import LocalFailoverError
from drkit.local.daemon import down, read_state, status, up
from drkit.local.names import resolve
from drkit.local.postgres import default_os_user
from drkit.local.process import alive, port_open
from drkit.ops.run import JOURNAL_DIR, RunOptions
from tests.integration.test_local_regions import eventually, scratch_project

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STORES = ["trading-db", "session-cache", "event-stream", "app-state"]
REPLICATED = ["trading-db", "session-cache", "event-stream"]
MARK = uuid.uuid4().hex


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    project = scratch_project(tmp_path_factory.mktemp("failover-local"))
    state = up(project, regions=2, only=STORES, out=io.StringIO())
    try:
        yield project, state
    finally:
        down(project, out=io.StringIO())


def url(state: dict[str, Any], region: str, store: str) -> str:
    return str(state["stores"][region][store]["url"])


def by_name(state: dict[str, Any], project: Path, store: str) -> str:
    """The dr credentials at the address the store's stable name leads to now."""
    from drkit.failover.local import through_name

    return through_name(state["stores"]["dr"][store], resolve(project, store))


def failover(project: Path, resume: str | None = None, **arguments: Any) -> Any:
    out = io.StringIO()
    outcome = switch_regions(
        {"to": "dr", **arguments},
        stack="local",
        outputs=None,
        kubeconfig=None,
        options=RunOptions(False, True, resume),
        project_dir=project,
        out=out,
    )
    return outcome, out.getvalue()


def journal_events(project: Path) -> tuple[str, list[dict[str, Any]]]:
    [path] = list((project / JOURNAL_DIR).glob("*.jsonl"))
    return path.stem, [json.loads(line) for line in path.read_text().splitlines() if line]


def test_failover_killed_mid_promotion_then_resumed_promotes_dr_once_and_moves_the_names(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    with psycopg.connect(url(state, "prod", "trading-db"), autocommit=True) as prod:
        prod.execute("CREATE TABLE IF NOT EXISTS marks (mark text PRIMARY KEY)")
        prod.execute("INSERT INTO marks VALUES (%s)", (MARK,))

    def replayed() -> bool | None:
        with psycopg.connect(url(state, "dr", "trading-db")) as standby:
            if standby.execute("SELECT to_regclass('marks')").fetchone() == (None,):
                return None
            found = standby.execute("SELECT 1 FROM marks WHERE mark = %s", (MARK,)).fetchone()
            return True if found else None

    eventually(replayed, "the row committed in prod replayed in dr")
    prod_processes = [p for p in status(project)["processes"] if p["region"] == "prod"]
    assert {p["name"] for p in prod_processes} >= {"postgres", "redis", "kafka", "kube-apiserver"}
    for process in prod_processes:
        os.kill(process["pid"], signal.SIGKILL)

    # The operator's first run dies (SIGKILL) in the middle of the promotions: MirrorMaker 2 is
    # stopped and the fork a failback mirrors back from is not recorded yet, while the PostgreSQL
    # promotion runs beside it.
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom pathlib import Path\n"
            "from drkit.failover.command import switch_regions\n"
            "from drkit.ops.run import RunOptions\n"
            "switch_regions({'to': 'dr'}, stack='local', outputs=None, kubeconfig=None, "
            f"options=RunOptions(yes=True), project_dir=Path({str(project)!r}), out=sys.stdout)\n",
        ],
        cwd=ROOT,
        env={**os.environ, "DRKIT_KILL_AT": "mirrormaker2.stopped"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=180,
        check=False,
    )
    assert run.returncode == -signal.SIGKILL
    run_id, events = journal_events(project)
    assert "run_finished" not in {e["event"] for e in events}
    assert "promote.event-stream" not in {
        e["step"] for e in events if e["event"] == "step_finished"
    }
    assert resolve(project, "event-stream").region == "prod"  # killed before its name moved
    assert read_state(project)[FORKS]["dr->prod"] == {"pending": True}

    outcome, printed = failover(project, resume=run_id)
    assert outcome.exit_code == 0, printed
    steps = {s.id: s.outcome for s in outcome.report.steps}
    assert steps["promote.trading-db"] in ("resumed", "already_done")  # never promoted twice
    assert steps["promote.event-stream"] == "done"  # the mirror stopped, the fork not recorded
    assert steps["postcheck"] == "done"
    # The fork is dr's end offsets once nothing mirrored into it: the failback mirrors from there.
    fork = read_state(project)[FORKS]["dr->prod"]["start"]
    assert fork and all(int(offset) >= 0 for offset in fork.values())

    # The stable names lead to dr, and dr's stores take writes through them.
    for store in REPLICATED:
        name = resolve(project, store)
        assert name.region == "dr"
        assert name.address in url(state, "dr", store)
    with psycopg.connect(by_name(state, project, "trading-db"), autocommit=True) as db:
        assert db.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        timeline = db.execute("SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
        assert timeline.fetchone() == ("00000002",)  # one promotion: timeline 1 -> 2
        assert db.execute("SELECT 1 FROM marks WHERE mark = %s", (MARK,)).fetchone() == (1,)
        db.execute("INSERT INTO marks VALUES ('written in dr')")
        assert db.execute(f"SELECT count(*) FROM {CHECK_TABLE}").fetchone() == (1,)
    with redis.Redis.from_url(by_name(state, project, "session-cache")) as cache:
        assert cache.set("session:after-failover", b"dr")
        assert cache.get("session:after-failover") == b"dr"
    producer = Producer({"bootstrap.servers": by_name(state, project, "event-stream")})
    producer.produce("order-events", key=b"after-failover", value=b"dr")
    assert producer.flush(30) == 0

    # Kafka clients in dr bootstrap from dr; the pilot-light workloads are up.
    from drkit.failover import kube
    from drkit.failover.clients import KubeconfigClients

    api = KubeconfigClients(Path(state["kubeconfig"])).api("local-dr")
    assert kube.bootstrap_servers(api, "aipx") == url(state, "dr", "event-stream")
    assert not kube.misscaled(api, "aipx", primary=True)
    mirror = next(p for p in state["processes"] if p["name"] == "mirror-maker")
    assert not alive(mirror["pid"], mirror["start_time"])

    # The report holds the lag of each store, read just before the cut-over.
    report = json.loads((project / "reports/latest/failover.json").read_text())
    lags = report["figures"]["lag_before_cutover"]
    assert set(lags) == set(REPLICATED)
    for store, reading in lags.items():
        assert reading["seconds"] is None, store  # prod was dark: unknown, never 0
        assert reading["note"], store
    assert lags["session-cache"]["detail"]["master_link_status"] == "down"
    assert lags["trading-db"]["detail"]["standby_replay_lsn"]
    assert report["figures"]["rto_seconds"] > 0
    assert report["status"] == "succeeded"


def test_a_failover_to_the_region_already_primary_is_a_no_op_saying_so(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, _ = stack
    before = (project / "reports/latest/failover.json").read_text()
    outcome, printed = failover(project)
    assert outcome.exit_code == 0
    assert "dr is already the primary region" in printed
    assert outcome.report.steps == []
    assert (project / "reports/latest/failover.json").read_text() == before


def test_invoke_failover_journals_itself_in_the_audit_bucket_of_the_side_it_switches_to(
    stack: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    from invoke.context import Context

    import tasks

    project, _ = stack
    root, tasks.ROOT = tasks.ROOT, project
    try:
        tasks.failover(Context(), stack="local", yes=True)  # dr is already primary: a no-op
        capsys.readouterr()
        dr_outputs = str(project / ".drkit/local/dr/outputs.json")
        tasks.audit_list(
            Context(), stack="local", outputs=dr_outputs, operation="failover", json=True
        )
        events = json.loads(capsys.readouterr().out)
    finally:
        tasks.ROOT = root
    assert [(e["event"], e["outcome"]) for e in (events[0], events[-1])] == [
        ("started", "started"),
        ("finished", "succeeded"),
    ]
    assert events[0]["arguments"]["to"] == "dr" and events[0]["who"]


def test_a_failback_while_the_old_primaries_are_unreachable_is_refused(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, _ = stack
    # prod is still dark (killed by the first test): refused, naming the stores
    with pytest.raises(
        LocalFailoverError,
        match="old primaries of event-stream, session-cache, trading-db do not answer",
    ):
        failover(project, to="prod", planned=True)


def test_the_killed_prod_postgresql_restarted_is_not_where_the_names_lead(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    [old] = [p for p in state["processes"] if p["name"] == "postgres" and p["region"] == "prod"]
    with open(old["log"], "ab") as log:
        restarted = subprocess.Popen(
            old["command"], stdout=log, stderr=log, user=default_os_user(), start_new_session=True
        )
    try:
        prod_url = url(state, "prod", "trading-db")

        def answers() -> bool | None:
            try:
                with psycopg.connect(prod_url, connect_timeout=2) as connection:
                    connection.execute("SELECT 1")
                return True
            except psycopg.OperationalError:
                return None

        eventually(answers, "the old prod PostgreSQL back up")
        with psycopg.connect(prod_url, autocommit=True) as old_primary:
            old_primary.execute("INSERT INTO marks VALUES ('split brain?')")
        name = resolve(project, "trading-db")
        assert name.region == "dr"
        assert name.address not in prod_url
        with psycopg.connect(by_name(state, project, "trading-db")) as db:
            found = db.execute("SELECT 1 FROM marks WHERE mark = 'split brain?'").fetchone()
        assert found is None  # what the old primary took reaches no application
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
    assert not port_open(int(prod_url.rpartition(":")[2].split("/")[0]))
    assert read_state(project) is not None


# --- failback: prod comes back, re-seeded from dr, then the switch back ---------------------------


def written_in_dr(state: dict[str, Any], project: Path) -> dict[str, list[str]]:
    """Acknowledged writes through the stable names while dr is primary: rows, keys, records."""
    marks = [f"dr-{MARK}-{n}" for n in range(20)]
    with psycopg.connect(by_name(state, project, "trading-db"), autocommit=True) as db:
        for mark in marks:
            db.execute("INSERT INTO marks VALUES (%s)", (mark,))
    with redis.Redis.from_url(by_name(state, project, "session-cache")) as cache:
        for mark in marks:
            assert cache.set(f"session:{mark}", mark)
    acked: list[str] = []
    producer = Producer(
        {"bootstrap.servers": by_name(state, project, "event-stream"), "acks": "all"}
    )
    for mark in marks:
        producer.produce(
            "order-events",
            key=mark.encode(),
            on_delivery=lambda error, message: (
                acked.append((message.key() or b"").decode()) if error is None else None
            ),
        )
    assert producer.flush(30) == 0
    assert sorted(acked) == sorted(marks)
    return {"rows": marks, "keys": marks, "records": acked}


def step_seconds(journal: Any) -> dict[str, float]:
    """Each step's duration from the journal's first start to its finish (the measure)."""
    from datetime import datetime

    started: dict[str, datetime] = {}
    took: dict[str, float] = {}
    for event in journal.events():
        at = datetime.fromisoformat(event["ts"])
        if event["event"] == "step_started":
            started.setdefault(event["step"], at)
        elif event["event"] == "step_finished" and event["step"] in started:
            took[event["step"]] = round((at - started[event["step"]]).total_seconds(), 2)
    return took


def record_keys(bootstrap: str, topic: str) -> list[str]:
    """Every record key of ``topic``, read from the beginning of each partition."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"check-{uuid.uuid4().hex}", "log_level": 3}
    )
    keys: list[str] = []
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        for partition in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, partition, low)])
            position = low
            while position < high:
                message = consumer.poll(5)
                assert message is not None, f"{topic}-{partition} unreadable at {position}"
                if message.error() is None:
                    position = (message.offset() or 0) + 1
                    keys.append((message.key() or b"").decode())
            consumer.unassign()
    finally:
        consumer.close()
    return keys


FAILBACK: dict[str, Any] = {}
"""What the killed failback left for its resumption (the next test): its run id, the writes."""


def test_a_failback_once_prod_is_back_killed_after_fencing_dr_has_promoted_nothing(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    from drkit.local.recorded import restart_region

    project, state = stack
    FAILBACK["acked"] = acked = written_in_dr(state, project)
    restart_region(project, "prod", io.StringIO())  # the region is back; its stores answer
    with psycopg.connect(url(state, "prod", "trading-db"), autocommit=True) as old_primary:
        # the old primary took a write nobody can see (the names lead to dr): rewound away
        old_primary.execute("INSERT INTO marks VALUES ('prod after the failover')")

    # The operator's failback dies (SIGKILL) once dr is fenced, before anything is promoted.
    run = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom pathlib import Path\n"
            "from drkit.failover.command import switch_regions\n"
            "from drkit.ops.run import RunOptions\n"
            "switch_regions({'to': 'prod', 'planned': True}, stack='local', outputs=None, "
            f"kubeconfig=None, options=RunOptions(yes=True), project_dir=Path({str(project)!r}), "
            "out=sys.stdout)\n",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    journals = project / JOURNAL_DIR
    before = set(journals.glob("*.jsonl"))
    try:

        def fenced() -> str | None:
            for path in set(journals.glob("*failback*.jsonl")) - before:
                events = [json.loads(line) for line in path.read_text().splitlines() if line]
                finished = {e["step"] for e in events if e["event"] == "step_finished"}
                if "fence.primary" in finished:
                    return path.stem
            return None

        run_id = eventually(fenced, "the failback's fence of dr", timeout=180)
        run.send_signal(signal.SIGKILL)
    finally:
        run.kill()
        run.wait()
    assert resolve(project, "trading-db").region == "dr"  # killed before the switch
    with psycopg.connect(url(state, "prod", "trading-db")) as prod:
        assert prod.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)  # re-seeded
    assert acked["rows"]
    FAILBACK["run_id"] = run_id


def test_the_failback_resumed_switches_back_without_loss_and_restores_the_original_shape(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    from drkit.failover import kube
    from drkit.failover.clients import KubeconfigClients
    from drkit.failover.command import status as dr_status
    from drkit.local.lag import MIRROR_PROCESS

    project, state = stack
    run_id, acked = FAILBACK["run_id"], FAILBACK["acked"]
    out = io.StringIO()
    outcome = switch_regions(
        {},
        stack="local",
        outputs=None,
        kubeconfig=None,
        options=RunOptions(False, True, run_id),
        project_dir=project,
        out=out,
    )
    assert outcome.exit_code == 0, out.getvalue()
    steps = {s.id: s for s in outcome.report.steps}
    for store in REPLICATED:
        assert steps[f"rejoin.{store}"].outcome == "resumed"  # not re-seeded a second time
        assert steps[f"promote.{store}"].outcome == "done"
        assert steps[f"restore.{store}"].outcome == "done"
    assert steps["postcheck"].outcome == "done"
    from drkit.ops.journal import Journal

    results = Journal(project / JOURNAL_DIR, run_id).results()
    # the old primary diverged (it took a write after the fork): rewound, not copied whole
    assert results["rejoin.trading-db"]["method"] == "pg_rewind", results["rejoin.trading-db"]
    assert results["restore.trading-db"]["method"] == "pg_rewind", results["restore.trading-db"]
    assert results["rejoin.event-stream"]["mirror"] == "dr->prod"
    assert results["restore.event-stream"]["mirror"] == "prod->dr"
    seconds = outcome.report.figures["seconds_by_store"]
    steps_seconds = step_seconds(Journal(project / JOURNAL_DIR, run_id))
    print(f"failback steps (killed run, resumed): {steps_seconds}; resumed, by store {seconds}")
    assert set(seconds) == set(REPLICATED)

    # Names lead to prod, and every write dr acknowledged is in prod.
    for store in REPLICATED:
        assert resolve(project, store).region == "prod"
    with psycopg.connect(by_name(state, project, "trading-db"), autocommit=True) as db:
        assert db.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        found = {r[0] for r in db.execute("SELECT mark FROM marks").fetchall()}
        assert set(acked["rows"]) | {MARK, "written in dr"} <= found
        assert "prod after the failover" not in found  # the old primary's own write, rewound
        assert "split brain?" not in found
        assert db.execute("SHOW default_transaction_read_only").fetchone() == ("off",)
        db.execute("INSERT INTO marks VALUES ('prod after the failback')")
    with redis.Redis.from_url(by_name(state, project, "session-cache")) as cache:
        for key in acked["keys"]:
            assert cache.get(f"session:{key}") == key.encode()
        assert cache.config_get("min-replicas-to-write") == {"min-replicas-to-write": "0"}
        assert cache.set("session:after-failback", b"prod")
    assert set(acked["records"]) <= set(
        record_keys(url(state, "prod", "event-stream"), "order-events")
    )

    # The original shape: dr's stores are standbys of prod's, unfenced, MirrorMaker 2 prod -> dr.
    def dr_replicates() -> bool | None:
        with psycopg.connect(url(state, "dr", "trading-db")) as standby:
            row = standby.execute(
                "SELECT 1 FROM marks WHERE mark = 'prod after the failback'"
            ).fetchone()
        with redis.Redis.from_url(url(state, "dr", "session-cache")) as replica:
            value = replica.get("session:after-failback")
        return True if row and value == b"prod" else None

    eventually(dr_replicates, "prod's writes after the failback on dr's standbys")
    now = read_state(project)
    assert now is not None
    forward = next(
        p for p in now["processes"] if p["name"] == MIRROR_PROCESS and p["region"] == "dr"
    )
    reversed_mirror = next(
        p for p in now["processes"] if p["name"] == MIRROR_PROCESS and p["region"] == "prod"
    )
    assert alive(forward["pid"], forward["start_time"])
    assert not alive(reversed_mirror["pid"], reversed_mirror["start_time"])
    api = KubeconfigClients(Path(state["kubeconfig"])).api("local-prod")
    assert kube.bootstrap_servers(api, "aipx") == url(state, "prod", "event-stream")
    assert not kube.misscaled(api, "aipx", primary=True)
    dr_api = KubeconfigClients(Path(state["kubeconfig"])).api("local-dr")
    assert not kube.misscaled(dr_api, "aipx", primary=False)  # pilot light again

    # invoke status --stack local: prod primary, each store's lag measured within its RPO.
    def caught_up() -> Any:
        report = dr_status(stack="local", outputs=None, kubeconfig=None, project_dir=project)
        rows = {r.store: r for r in report.rows}
        return report if all(rows[s].lag_ok for s in REPLICATED) else None

    report = eventually(caught_up, "every store's lag within its RPO after the failback")
    assert report.primary_region == "prod"
    assert report.standby_region == "dr"


def test_a_second_failover_after_the_failback_is_a_planned_switchover_losing_nothing(
    stack: tuple[Path, dict[str, Any]],
) -> None:
    project, state = stack
    producer = Producer(
        {"bootstrap.servers": by_name(state, project, "event-stream"), "acks": "all"}
    )
    producer.produce("order-events", key=b"prod after the failback")
    assert producer.flush(30) == 0
    outcome, printed = failover(project, planned=True)
    assert outcome.exit_code == 0, printed
    for store in REPLICATED:
        assert resolve(project, store).region == "dr"
    with psycopg.connect(by_name(state, project, "trading-db")) as db:
        assert db.execute(
            "SELECT 1 FROM marks WHERE mark = 'prod after the failback'"
        ).fetchone() == (1,)
    with redis.Redis.from_url(by_name(state, project, "session-cache")) as cache:
        assert cache.get("session:after-failback") == b"prod"
    keys = record_keys(url(state, "dr", "event-stream"), "order-events")
    assert "prod after the failback" in keys
    assert len(keys) == len(set(keys))  # the mirrors started at their forks: no record twice
