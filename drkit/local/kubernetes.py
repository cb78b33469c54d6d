"""A real Kubernetes API server on 127.0.0.1 for the local harness, the tests and the drill.

The server is the upstream ``kube-apiserver`` (built from the Go module proxy by
``scripts/build-kube-apiserver.sh`` into ``$DRKIT_CACHE/kube-apiserver-<version>/``), backed by a
real etcd (Debian's ``etcd-server``). Both run in the foreground under ``ManagedProcess`` on free
loopback ports, with their data, keys and logs in the caller's throwaway work directory.

What a backup or restore of Kubernetes state talks to is all real: storage in etcd, validation,
defaulting, admission, server-side apply and managedFields, CRDs with structural schemas, RBAC,
resourceVersion and uid. What is not there is everything outside the API server: no
controller-manager (a Deployment gets no ReplicaSet or Pods, a namespace no default
ServiceAccount, and a deleted namespace stays ``Terminating``), no scheduler, no kubelet. The
``ServiceAccount`` admission plugin is off because it would reject every Pod for want of the
``default`` ServiceAccount that only the controller-manager creates.

Trust: the harness makes its own CA and serving certificate (so ``ca_path`` holds exactly one CA
certificate a client can pin), a service-account signing key, and a static bearer token for an
admin in ``system:masters``, whom the RBAC authorizer always lets through.

Run ``python -m drkit.local.kubernetes run`` for a server to poke at with kubectl, or
``python -m drkit.local.kubernetes binary`` to print the binary's path.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import ssl
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import kubernetes.client  # type: ignore[import-untyped]
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from drkit.local.process import LOOPBACK, LocalServer, ManagedProcess, ServerStartError, free_port

BINARY_ENV = "DRKIT_KUBE_APISERVER"
ETCD_ENV = "DRKIT_ETCD"
CACHE_ENV = "DRKIT_CACHE"
GO_MODULE_DIR = Path(__file__).with_name("kube-apiserver")
BUILD_SCRIPT = "scripts/build-kube-apiserver.sh"

ETCD_START_TIMEOUT_S = 60.0
APISERVER_START_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 2.0

ADMIN_USER = "drkit-admin"
ADMIN_GROUP = "system:masters"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"  # configuration only: nothing on this machine routes it
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "drkit-local"
CERT_LIFETIME = datetime.timedelta(days=7)


class KubeApiserverMissing(ServerStartError):
    """No kube-apiserver binary: the message says how to build it."""


# --- finding the binaries ----------------------------------------------------------------------


def kubernetes_version() -> str:
    """The release pinned in the Go module's go.mod (``require k8s.io/kubernetes vX.Y.Z``)."""
    go_mod = GO_MODULE_DIR / "go.mod"
    match = re.search(r"^\s*k8s\.io/kubernetes\s+(v\d+\.\d+\.\d+)\s*$", go_mod.read_text(), re.M)
    if match is None:
        raise RuntimeError(f"{go_mod} requires no k8s.io/kubernetes vX.Y.Z")
    return match.group(1)


def cache_root() -> Path:
    """``$DRKIT_CACHE``, else ``~/.cache/drkit``: shared by every harness server that is built."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "drkit"


def kube_apiserver_binary() -> Path:
    """``$DRKIT_KUBE_APISERVER`` when set, else where the build script puts this version."""
    configured = os.environ.get(BINARY_ENV)
    if configured:
        return Path(configured).expanduser()
    version = kubernetes_version()
    return cache_root() / f"kube-apiserver-{version}" / "kube-apiserver"


def kube_apiserver_available() -> bool:
    return os.access(kube_apiserver_binary(), os.X_OK)


def missing() -> str | None:
    """Why ``local.up`` cannot run a Kubernetes store here (``local.missing`` in
    ``drkit.kinds``), or None."""
    if kube_apiserver_available():
        return None
    return (
        f"kube-apiserver is not built: run {BUILD_SCRIPT}, or leave app-state out with "
        "--only (e.g. --only trading-db,session-cache,event-stream)"
    )


def _require_kube_apiserver() -> Path:
    binary = kube_apiserver_binary()
    if not os.access(binary, os.X_OK):
        raise KubeApiserverMissing(
            f"kube-apiserver not found at {binary}: run {BUILD_SCRIPT} (it builds "
            f"{kubernetes_version()} from the Go module proxy) or set {BINARY_ENV}"
        )
    return binary


def _etcd_binary() -> str:
    configured = os.environ.get(ETCD_ENV)
    found = configured or shutil.which("etcd")
    if not found:
        raise ServerStartError(
            f"etcd is not on PATH: install Debian's etcd-server (scripts/bootstrap.sh does) "
            f"or set {ETCD_ENV}"
        )
    return found


# --- keys and certificates ---------------------------------------------------------------------


def _pem_private_key(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    """Keys are readable by their owner only, as the real files on a control plane are."""
    path.write_bytes(data)
    path.chmod(0o600)


def _certificate(
    subject: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name | None,
    signing_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default"),
                    x509.DNSName("kubernetes.default.svc"),
                ]
            ),
            critical=False,
        ).add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


def write_pki(directory: Path) -> None:
    """A CA, a serving certificate for 127.0.0.1 signed by it, and a service-account key pair.

    Kept if already there, so a restart on the same work directory keeps tokens and trust valid.
    """
    if (directory / "sa.pub").is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate(f"{CLUSTER_NAME}-ca", ca_key.public_key(), None, ca_key, ca=True)
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = _certificate(
        "kube-apiserver", serving_key.public_key(), ca_cert.subject, ca_key, ca=False
    )
    (directory / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    (directory / "apiserver.crt").write_bytes(serving_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(directory / "apiserver.key", _pem_private_key(serving_key))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_private(directory / "sa.key", _pem_private_key(sa_key))
    (directory / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


# --- probes ------------------------------------------------------------------------------------


def etcd_healthy(client_url: str) -> bool:
    with urllib.request.urlopen(f"{client_url}/health", timeout=PROBE_TIMEOUT_S) as response:
        return bool(json.load(response).get("health") == "true")


def apiserver_ready(server: str, token: str, ca_path: Path) -> bool:
    """``/readyz`` says ok only once etcd answers and every post-start hook (RBAC roles,
    CRD informers, the ``kubernetes`` Service) has run: the server is usable, not just up."""
    request = urllib.request.Request(
        f"{server}/readyz", headers={"Authorization": f"Bearer {token}"}
    )
    context = ssl.create_default_context(cafile=str(ca_path))
    with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S, context=context) as response:
        return bool(response.status == 200 and response.read().strip() == b"ok")


# --- the servers -------------------------------------------------------------------------------


class LocalKubernetes(LocalServer):
    """``kube-apiserver`` + etcd on free loopback ports, as an admin with a bearer token.

    Stopping and starting again reuses the work directory, the ports, the keys and the token, so
    objects written before a restart are still there after it (an API server restart drill).
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.token = secrets.token_urlsafe(32)
        self._ports: tuple[int, int, int] | None = None
        self._etcd: ManagedProcess | None = None
        self._apiserver: ManagedProcess | None = None

    @property
    def pki_dir(self) -> Path:
        return self.workdir / "pki"

    @property
    def ca_path(self) -> Path:
        """The CA that signed the serving certificate: pin it; never turn verification off."""
        return self.pki_dir / "ca.crt"

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def apiserver_log(self) -> Path:
        return self.workdir / "kube-apiserver.log"

    @property
    def etcd_log(self) -> Path:
        return self.workdir / "etcd.log"

    @property
    def server(self) -> str:
        """``https://127.0.0.1:<port>``, the API server's URL."""
        return f"https://{LOOPBACK}:{self._port_set()[0]}"

    @property
    def etcd_url(self) -> str:
        return f"http://{LOOPBACK}:{self._port_set()[1]}"

    @property
    def version(self) -> str:
        return kubernetes_version()

    def pids(self) -> list[int]:
        """The running kube-apiserver and etcd processes (for memory figures and leak checks)."""
        processes = (self._apiserver, self._etcd)
        return [p.pid for p in processes if p is not None and p.running() and p.pid is not None]

    def api_client(self) -> kubernetes.client.ApiClient:
        """A new client as the admin, verifying the server against ``ca_path``; close it after."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.server
        configuration.ssl_ca_cert = str(self.ca_path)
        configuration.verify_ssl = True
        # The whole header value under "authorization": client 36 looks the prefix up under its
        # new "BearerToken" key only, so a separate api_key_prefix would be silently dropped.
        configuration.api_key = {"authorization": f"Bearer {self.token}"}
        return kubernetes.client.ApiClient(configuration)

    def start(self) -> None:
        """Make keys if need be, start etcd, then the API server, and wait until it is ready."""
        if self._apiserver is not None and self._apiserver.running():
            return
        binary = _require_kube_apiserver()
        etcd = _etcd_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._ports is None:
            self._ports = _distinct_free_ports(3)
        write_pki(self.pki_dir)
        self._write_token_file()
        self._write_kubeconfig()
        self._start_etcd(etcd)
        self._start_apiserver(binary)

    def stop(self) -> None:
        """The API server first (it flushes to etcd), then etcd; each is reaped either way."""
        for attribute in ("_apiserver", "_etcd"):
            process: ManagedProcess | None = getattr(self, attribute)
            if process is not None:
                process.stop(timeout=30.0)
                setattr(self, attribute, None)

    def restart(self) -> None:
        """Stop and start on the same ports and etcd data: every object must survive it."""
        self.stop()
        self.start()

    def _port_set(self) -> tuple[int, int, int]:
        if self._ports is None:
            raise RuntimeError("LocalKubernetes: ports read before start()")
        return self._ports

    def _write_token_file(self) -> None:
        """``--token-auth-file`` CSV: token, user name, uid, then the groups in quotes."""
        line = f'{self.token},{ADMIN_USER},{ADMIN_USER},"{ADMIN_GROUP}"\n'
        _write_private(self.pki_dir / "tokens.csv", line.encode())

    def _write_kubeconfig(self) -> None:
        """For kubectl and ``kubernetes.config``: the same server, CA and token as api_client."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": CLUSTER_NAME,
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_path)},
                }
            ],
            "users": [{"name": ADMIN_USER, "user": {"token": self.token}}],
            "contexts": [
                {"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": ADMIN_USER}}
            ],
            "current-context": CLUSTER_NAME,
        }
        _write_private(self.kubeconfig_path, yaml.safe_dump(config, sort_keys=False).encode())

    def _start_etcd(self, etcd: str) -> None:
        peer_port = self._port_set()[2]
        peer_url = f"http://{LOOPBACK}:{peer_port}"
        data_dir = self.workdir / "etcd"
        command = [
            etcd,
            "--name", "drkit",
            "--data-dir", str(data_dir),
            "--listen-client-urls", self.etcd_url,
            "--advertise-client-urls", self.etcd_url,
            "--listen-peer-urls", peer_url,
            "--initial-advertise-peer-urls", peer_url,
            "--initial-cluster", f"drkit={peer_url}",
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip
        # Only the flags configure it: ETCD_* variables would silently override the defaults.
        env = {key: value for key, value in os.environ.items() if not key.startswith("ETCD_")}
        process = ManagedProcess("etcd", command, self.etcd_log, env=env, cwd=self.workdir)
        self._etcd = process
        process.start()
        url = self.etcd_url
        process.wait_until(
            lambda: etcd_healthy(url), ETCD_START_TIMEOUT_S, f"answering {url}/health"
        )

    def _start_apiserver(self, binary: Path) -> None:
        api_port = self._port_set()[0]
        pki = self.pki_dir
        command = [
            str(binary),
            "--etcd-servers", self.etcd_url,
            "--bind-address", LOOPBACK,
            "--advertise-address", LOOPBACK,
            "--secure-port", str(api_port),
            "--tls-cert-file", str(pki / "apiserver.crt"),
            "--tls-private-key-file", str(pki / "apiserver.key"),
            "--cert-dir", str(self.workdir / "certs"),
            "--token-auth-file", str(pki / "tokens.csv"),
            "--authorization-mode", "RBAC",
            "--service-account-issuer", SERVICE_ACCOUNT_ISSUER,
            "--service-account-key-file", str(pki / "sa.pub"),
            "--service-account-signing-key-file", str(pki / "sa.key"),
            "--service-cluster-ip-range", SERVICE_CLUSTER_IP_RANGE,
            "--disable-admission-plugins", "ServiceAccount",
            # The reconciler would publish 127.0.0.1 as the kubernetes Service's endpoint, which
            # validation rejects (loopback), and log that error every ten seconds.
            "--endpoint-reconciler-type", "none",
            # Priority and fairness costs memory and a config controller; one client needs none.
            "--enable-priority-and-fairness=false",
            "--profiling=false",
        ]  # fmt: skip
        process = ManagedProcess("kube-apiserver", command, self.apiserver_log, cwd=self.workdir)
        self._apiserver = process
        process.start()
        server, token, ca_path = self.server, self.token, self.ca_path
        process.wait_until(
            lambda: apiserver_ready(server, token, ca_path),
            APISERVER_START_TIMEOUT_S,
            f"answering ok on {server}/readyz",
        )


def _distinct_free_ports(count: int) -> tuple[int, int, int]:
    """``free_port`` may hand out the same port twice in a row; each listener needs its own."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports[0], ports[1], ports[2]


# --- command line ------------------------------------------------------------------------------


def _run_until_signalled(workdir: Path | None) -> None:
    """Start the servers and keep them until Ctrl-C or SIGTERM, then stop them cleanly."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="drkit-kube-")))
        cluster = stack.enter_context(LocalKubernetes(workdir))
        print(f"kube-apiserver {cluster.version} ready at {cluster.server}", flush=True)
        print(f"KUBECONFIG={cluster.kubeconfig_path}", flush=True)
        print(f"logs: {cluster.apiserver_log} {cluster.etcd_log}", flush=True)
        signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drkit.local.kubernetes", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("binary", help="print the kube-apiserver path; fail if it is not built")
    run = commands.add_parser("run", help="run kube-apiserver and etcd until Ctrl-C")
    run.add_argument("--workdir", type=Path, help="data, keys and logs (default: a temp dir)")
    args = parser.parse_args(argv)
    if args.command == "binary":
        print(_require_kube_apiserver())
    else:
        _run_until_signalled(args.workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
