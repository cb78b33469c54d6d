"""A real Redis server for tests and the local default, configured entirely on its command line.

No config file is written: every setting is an argument, so the log shows exactly what ran. RDB
snapshots are off unless asked for, because most tests want a clean, fast server; the restore path
needs them on, and needs ``restart()`` on the same port and directory, since restoring Redis means
replacing ``dump.rdb`` while the server is down and starting it again.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from pathlib import Path

import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, free_port

REDIS_SERVER = "redis-server"
START_TIMEOUT = 30.0
RDB_FILENAME = "dump.rdb"
# Redis's own default save points, used when a caller asks for RDB persistence.
DEFAULT_SAVE_POINTS = "3600 1 300 100 60 10000"
ELASTICACHE_DISABLED = ("BGSAVE", "SAVE", "SYNC", "PSYNC", "CONFIG")
"""What ElastiCache refuses (it answers "unknown command"): no saves on demand, no replication
protocol for clients, no configuration changes. ``elasticache_shaped`` renames them away."""
CERT_LIFETIME = datetime.timedelta(days=30)


def write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for 127.0.0.1 signed by it: (ca.crt, redis.crt, redis.key).

    Kept if already there, so a restart on the same directory keeps clients' trust valid."""
    ca_path, cert_path, key_path = (directory / n for n in ("ca.crt", "redis.crt", "redis.key"))
    if key_path.is_file():
        return ca_path, cert_path, key_path
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "drkit-local-redis-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "redis")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


class LocalRedis(LocalServer):
    """One ``redis-server`` in the foreground with a password, on a free loopback port.

    ``elasticache_shaped``: what production's ElastiCache allows and no more: AUTH, TLS only (the
    plain port closed; a CA of its own, ``tls_ca_file``) and ``ELASTICACHE_DISABLED`` renamed
    away, so a path that only works on a self-hosted server fails here as it would in AWS.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        persistence: bool = False,
        executable: str = REDIS_SERVER,
        elasticache_shaped: bool = False,
    ) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "redis"
        self.persistence = persistence
        self.executable = executable
        self.host = LOOPBACK
        self.port = free_port()
        self.password = secrets.token_urlsafe(18)
        self.rdb_filename = RDB_FILENAME
        self.elasticache_shaped = elasticache_shaped
        self.tls = elasticache_shaped
        self.tls_ca_file: Path | None = None
        self._process: ManagedProcess | None = None

    @property
    def rdb_path(self) -> Path:
        """Where the server reads its snapshot at start and writes it on SAVE/BGSAVE."""
        return self.data_dir / self.rdb_filename

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{self.password}@{self.host}:{self.port}/0"

    def client(self, db: int = 0) -> redis.Redis[bytes]:
        return redis.Redis(
            host=self.host,
            port=self.port,
            password=self.password,
            db=db,
            socket_timeout=10,
            decode_responses=False,
            ssl=self.tls,
            ssl_ca_certs=str(self.tls_ca_file) if self.tls_ca_file else None,
        )

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.tls:
            self.tls_ca_file, self._tls_cert, self._tls_key = write_tls_files(self.workdir / "tls")
        self._process = ManagedProcess(
            "redis", self._command(), self.workdir / "redis.log", cwd=self.data_dir
        )
        self._process.start()
        self._process.wait_until(self._answers_ping, START_TIMEOUT, "answering PING")

    def stop(self) -> None:
        """SIGTERM: with persistence on, Redis writes a final snapshot before it exits."""
        if self._process is not None:
            self._process.stop()
            self._process = None

    def restart(self) -> None:
        """Stop and start on the same port and directory, so a replaced dump.rdb is loaded."""
        self.stop()
        self.start()

    def _command(self) -> list[str]:
        save = DEFAULT_SAVE_POINTS if self.persistence else ""
        ports = ["--port", str(self.port)]
        if self.tls:
            ports = [
                "--port", "0",
                "--tls-port", str(self.port),
                "--tls-cert-file", str(self._tls_cert),
                "--tls-key-file", str(self._tls_key),
                "--tls-ca-cert-file", str(self.tls_ca_file),
                "--tls-auth-clients", "no",
            ]  # fmt: skip
        renamed: list[str] = []
        if self.elasticache_shaped:
            for command in ELASTICACHE_DISABLED:
                renamed += ["--rename-command", command, ""]
        return [
            self.executable,
            *ports,
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--dbfilename", self.rdb_filename,
            "--requirepass", self.password,
            "--save", save,
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", "",
            *renamed,
        ]  # fmt: skip

    def _answers_ping(self) -> bool:
        with self.client() as client:
            return bool(client.ping())
