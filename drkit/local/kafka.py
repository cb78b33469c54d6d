"""A real Apache Kafka broker on 127.0.0.1 for the local harness, the tests and the drill.

No package registry carries Kafka's distribution tarball, but Maven Central carries every jar of
it, so the broker is assembled from there by Maven (``kafka-broker-pom.xml`` beside this file) into
``$DRKIT_CACHE/kafka-<version>/lib`` once, and run as ``java -cp lib/* kafka.Kafka`` in KRaft mode
(one process that is both broker and controller: no ZooKeeper, which Kafka 4 no longer has).

The broker is a direct child of the caller, in the foreground, under ``ManagedProcess``; its data
lives in the caller's throwaway work directory. When ``DRKIT_KAFKA_BOOTSTRAP`` is set, an existing
broker is used instead and nothing is fetched or started.

Run ``python -m drkit.local.kafka fetch`` to fill the cache ahead of time (CI does), or
``python -m drkit.local.kafka run`` for a broker to poke at by hand.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from confluent_kafka.admin import AdminClient

from drkit.local.process import (
    LOOPBACK,
    LocalServer,
    ManagedProcess,
    ServerStartError,
    free_port,
    port_open,
)

# Kafka 4.3.1: the newest release whose artifacts are all on Maven Central (4.4.0's kafka_2.13
# POM names a kafka-tools-api 4.4.0 that Central does not have). Kafka 4 brokers need Java 17+.
KAFKA_VERSION = "4.3.1"
BOOTSTRAP_ENV = "DRKIT_KAFKA_BOOTSTRAP"
CACHE_ENV = "DRKIT_CACHE"
POM_PATH = Path(__file__).with_name("kafka-broker-pom.xml")
MIRROR_MAKER_POM_PATH = Path(__file__).with_name("kafka-mirror-maker-pom.xml")
MARKER_NAME = "complete"

BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
NODE_ID = 1
START_TIMEOUT_S = 90.0
FETCH_TIMEOUT_S = 900.0

# Two cores and many sibling servers: a small heap, and the serial collector, which needs no
# GC threads of its own and starts faster than G1 on a tiny heap.
JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-Djava.awt.headless=true",
    "-Dorg.slf4j.simpleLogger.showDateTime=true",
    "-Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS",
    # The full config dump is hundreds of lines that would push the cause of a failure out of the
    # log tail that ServerStartError quotes.
    "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.common.config.AbstractConfig=warn",
)

# Single node: every internal topic must fit on one replica, and a consumer group must not wait
# for members that will never come. Topics are created on purpose, never by a typo'd consumer.
TEST_SETTINGS = {
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "3",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "3",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    "group.initial.rebalance.delay.ms": "0",
    "auto.create.topics.enable": "false",
    "num.partitions": "3",
    "default.replication.factor": "1",
    "min.insync.replicas": "1",
}


class KafkaFetchError(RuntimeError):
    """Maven could not assemble the broker's jars; the message quotes Maven's output."""


# --- fetching the jars -------------------------------------------------------------------------


def cache_root() -> Path:
    """``$DRKIT_CACHE``, else ``~/.cache/drkit``: shared by every harness server that downloads."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "drkit"


def kafka_home(version: str = KAFKA_VERSION) -> Path:
    """One directory per version, so that a version bump never runs against stale jars."""
    return cache_root() / f"kafka-{version}"


def _cache_complete(home: Path) -> bool:
    """The marker lists the jars of a finished fetch; all of them must still be there."""
    marker = home / MARKER_NAME
    if not marker.is_file():
        return False
    jars = marker.read_text().split()
    return bool(jars) and all((home / "lib" / jar).is_file() for jar in jars)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise fetches: two test sessions starting at once must not both write ``lib``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _maven_command(output_dir: Path, pom: Path = POM_PATH) -> list[str]:
    """``kafka.version`` is passed in so that this module, not the POM, decides the version."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaFetchError("mvn is not on PATH; it fetches the Kafka broker from Maven Central")
    return [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output_dir}",
    ]


def _run_maven(output_dir: Path, pom: Path = POM_PATH) -> None:
    result = subprocess.run(
        _maven_command(output_dir, pom),
        capture_output=True,
        text=True,
        timeout=FETCH_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip().splitlines()
        raise KafkaFetchError(
            f"mvn could not fetch Kafka {KAFKA_VERSION} (exit {result.returncode}):\n"
            + "\n".join(output[-40:])
        )


def _fetch_into(
    home: Path, pom: Path = POM_PATH, main_jar: str = f"kafka_2.13-{KAFKA_VERSION}.jar"
) -> None:
    """Fetch into a scratch directory and move it into place, so ``lib`` is never half-full."""
    partial = home / "lib.partial"
    lib = home / "lib"
    for stale in (partial, lib):
        shutil.rmtree(stale, ignore_errors=True)
    (home / MARKER_NAME).unlink(missing_ok=True)
    _run_maven(partial, pom)
    jars = sorted(path.name for path in partial.glob("*.jar"))
    if main_jar not in jars:
        raise KafkaFetchError(f"mvn finished but {partial} holds no {main_jar}: {jars}")
    partial.rename(lib)
    (home / MARKER_NAME).write_text("\n".join(jars) + "\n")


def ensure_kafka_jars() -> Path:
    """The directory of the broker's jars, fetched with Maven unless a complete cache is there."""
    home = kafka_home()
    if not _cache_complete(home):
        with _locked(home.parent / f"kafka-{KAFKA_VERSION}.lock"):
            if not _cache_complete(home):
                _fetch_into(home)
    return home / "lib"


def mirror_maker_home(version: str = KAFKA_VERSION) -> Path:
    """MirrorMaker 2's jars: a cache directory of their own, so fetching them never replaces the
    broker's ``lib`` while a broker runs from it."""
    return cache_root() / f"kafka-mirror-maker-{version}"


def ensure_mirror_maker_jars() -> Path:
    """The directory of MirrorMaker 2's jars (connect-mirror, connect-runtime and their
    dependencies, the broker's version), fetched with Maven unless a complete cache is there."""
    home = mirror_maker_home()
    if not _cache_complete(home):
        with _locked(home.parent / f"kafka-mirror-maker-{KAFKA_VERSION}.lock"):
            if not _cache_complete(home):
                home.mkdir(parents=True, exist_ok=True)
                _fetch_into(home, MIRROR_MAKER_POM_PATH, f"connect-mirror-{KAFKA_VERSION}.jar")
    return home / "lib"


# --- running the broker ------------------------------------------------------------------------


def _java() -> str:
    """``$JAVA_HOME/bin/java`` when set, as Kafka's own scripts do, else ``java`` on PATH."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise ServerStartError("kafka: java is not on PATH; the broker needs Java 17 or newer")
    return found


def _java_command(lib: Path, main: str, *args: str) -> list[str]:
    # The JVM expands a trailing ``*`` in a class path entry itself; no shell is involved.
    return [_java(), *JVM_OPTIONS, "-cp", f"{lib}/*", main, *args]


def new_cluster_id() -> str:
    """What ``kafka-storage random-uuid`` prints, without starting a JVM to print it."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka rejects ids that would read as a command-line flag
            return text


def _distinct_free_ports(count: int) -> list[int]:
    """``free_port`` may hand out the same port twice in a row; the listeners need different."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def server_properties(
    data_dir: Path,
    broker_port: int,
    controller_port: int,
    sasl_port: int,
    advertised_port: int | None = None,
) -> str:
    """A combined broker + controller with a static one-voter quorum, all on loopback.

    Besides the open PLAINTEXT listener, a ``SASL`` listener takes only SASL/OAUTHBEARER clients:
    the mechanism MSK's IAM authentication uses. The broker validates tokens with Kafka's
    unsecured validator (a JWT with ``alg: none``, ``sub`` and ``exp``), because only AWS can
    check an MSK IAM token; what it proves is that every client drkit makes sends the token its
    callback produces, and that one without it is refused.

    ``advertised_port`` (default: the PLAINTEXT listener's own) is the port the broker tells
    clients to connect to: a proxy's in front of it, so that every connection passes the proxy.
    """
    advertised = advertised_port or broker_port
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        "controller.quorum.voters": f"{NODE_ID}@{LOOPBACK}:{controller_port}",
        "listeners": (
            f"PLAINTEXT://{LOOPBACK}:{broker_port},CONTROLLER://{LOOPBACK}:{controller_port},"
            f"SASL://{LOOPBACK}:{sasl_port}"
        ),
        "advertised.listeners": (
            f"PLAINTEXT://{LOOPBACK}:{advertised},SASL://{LOOPBACK}:{sasl_port}"
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": (
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL:SASL_PLAINTEXT"
        ),
        "listener.name.sasl.sasl.enabled.mechanisms": "OAUTHBEARER",
        "listener.name.sasl.oauthbearer.sasl.jaas.config": (
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;"
        ),
        "log.dirs": str(data_dir),
        **TEST_SETTINGS,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def broker_answers(bootstrap: str, timeout: float = 2.0) -> bool:
    """Ready means a metadata request is answered and lists a broker, not just an open port."""
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})
    metadata = admin.list_topics(timeout=timeout)
    return bool(metadata.brokers)


class LocalKafka(LocalServer):
    """A single-node KRaft broker on free loopback ports, or the one in ``DRKIT_KAFKA_BOOTSTRAP``.

    Stopping and starting again reuses the work directory and the ports, so data written before a
    restart is still there after it (what a drill of a broker restart needs).
    """

    def __init__(self, workdir: Path, *, advertised_port: int | None = None) -> None:
        """``advertised_port``: see :func:`server_properties` (a broker of its own only)."""
        self.workdir = workdir
        self.advertised_port = advertised_port
        self._external = None if advertised_port else (os.environ.get(BOOTSTRAP_ENV) or None)
        self._cluster_id = new_cluster_id()
        self._ports: tuple[int, int, int] | None = None
        self._process: ManagedProcess | None = None

    @property
    def external(self) -> bool:
        """True when the broker is someone else's: then start and stop leave it alone."""
        return self._external is not None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers``."""
        if self._external is not None:
            return self._external
        if self._ports is None:
            raise RuntimeError("LocalKafka.bootstrap read before start()")
        return f"{LOOPBACK}:{self._ports[0]}"

    @property
    def sasl_bootstrap(self) -> str:
        """``host:port`` of the listener that takes only SASL/OAUTHBEARER (``SASL_PLAINTEXT``)."""
        if self._external is not None:
            raise RuntimeError(f"{BOOTSTRAP_ENV} names a broker of its own: no SASL listener known")
        if self._ports is None:
            raise RuntimeError("LocalKafka.sasl_bootstrap read before start()")
        return f"{LOOPBACK}:{self._ports[2]}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kafka.log"

    def start(self) -> None:
        """Fetch if need be, format the storage, start the broker and wait until it answers."""
        if self._external is not None:
            self._check_external()
            return
        if self._process is not None and self._process.running():
            return
        lib = ensure_kafka_jars()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._ports is None:
            broker_port, controller_port, sasl_port = _distinct_free_ports(3)
            self._ports = (broker_port, controller_port, sasl_port)
        config = self._write_config()
        self._format_storage(lib, config)
        self._launch(lib, config)

    def stop(self) -> None:
        """SIGTERM lets the broker flush and close its logs; ManagedProcess reaps it either way."""
        if self._process is not None:
            self._process.stop(timeout=30.0)
            self._process = None

    def restart(self) -> None:
        """Stop and start on the same ports and data directory: the data must survive it."""
        self.stop()
        self.start()

    def _check_external(self) -> None:
        """Fail at start, naming the variable, rather than in the middle of a test."""
        try:
            answered = broker_answers(self.bootstrap, timeout=10.0)
        except Exception as error:
            raise ServerStartError(f"{BOOTSTRAP_ENV}={self.bootstrap}: {error}") from error
        if not answered:
            raise ServerStartError(f"{BOOTSTRAP_ENV}={self.bootstrap} lists no broker")

    def _write_config(self) -> Path:
        assert self._ports is not None
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "server.properties"
        config.write_text(server_properties(data_dir, *self._ports, self.advertised_port))
        return config

    def _format_storage(self, lib: Path, config: Path) -> None:
        """KRaft refuses unformatted log dirs; ``--ignore-formatted`` keeps data across restarts."""
        log = self.workdir / "format.log"
        # A short-lived tool: the C1 compiler alone starts it faster (the broker keeps C2).
        java, *options = _java_command(
            lib,
            STORAGE_TOOL_MAIN,
            "format",
            "--cluster-id",
            self._cluster_id,
            "--config",
            str(config),
            "--ignore-formatted",
        )
        command = [java, "-XX:TieredStopAtLevel=1", *options]
        with log.open("wb") as output:
            result = subprocess.run(
                command, stdout=output, stderr=subprocess.STDOUT, timeout=120, check=False
            )
        if result.returncode != 0:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
            raise ServerStartError(
                f"kafka storage format failed (exit {result.returncode}):\n{tail}"
            )

    def _launch(self, lib: Path, config: Path) -> None:
        assert self._ports is not None
        broker_port = self._ports[0]
        process = ManagedProcess(
            "kafka", _java_command(lib, BROKER_MAIN, str(config)), self.log_path, cwd=self.workdir
        )
        self._process = process
        process.start()
        bootstrap = self.bootstrap
        process.wait_until(
            lambda: port_open(broker_port) and broker_answers(bootstrap),
            timeout=START_TIMEOUT_S,
            what=f"answering metadata requests on {bootstrap}",
        )


# --- command line ------------------------------------------------------------------------------


def _run_until_signalled(workdir: Path | None) -> None:
    """Start a broker and keep it until Ctrl-C or SIGTERM, then stop it cleanly."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drkit-kafka-")))
        broker = stack.enter_context(LocalKafka(workdir))
        print(f"kafka {KAFKA_VERSION} ready: bootstrap.servers={broker.bootstrap}", flush=True)
        print(f"log: {broker.log_path}", flush=True)
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drkit.local.kafka", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "fetch", help="fetch the broker's and MirrorMaker 2's jars into the cache; print the paths"
    )
    run = commands.add_parser("run", help="run a broker in the foreground until Ctrl-C")
    run.add_argument("--workdir", type=Path, help="data and log directory (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        print(ensure_kafka_jars())
        print(ensure_mirror_maker_jars())
    else:
        _run_until_signalled(args.workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
