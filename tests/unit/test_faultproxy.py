"""The fault proxy on loopback sockets: each fault strikes at its exact byte, lasts, and heals."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from drkit.local.faultproxy import LOOPBACK, Direction, Fault, FaultProxy

pytestmark = pytest.mark.unit

WAIT = 5.0
"""How long a test waits for bytes that should arrive; a stall is shown by a short wait."""
QUIET = 0.5


class Server:
    """Records what each connection sends; answers ``greeting`` at connect, then echoes."""

    def __init__(self, greeting: bytes = b"") -> None:
        self.greeting = greeting
        self.received: list[bytearray] = []
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(0.1)
        self.port = int(self.listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            got = bytearray()
            self.received.append(got)
            threading.Thread(target=self._handle, args=(conn, got), daemon=True).start()

    def _handle(self, conn: socket.socket, got: bytearray) -> None:
        with conn, contextlib.suppress(OSError):
            if self.greeting:
                conn.sendall(self.greeting)
            while data := conn.recv(65536):
                got += data
                conn.sendall(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.listener.close()


@pytest.fixture
def server() -> Iterator[Server]:
    server = Server()
    yield server
    server.close()


@pytest.fixture
def proxy(server: Server) -> Iterator[FaultProxy]:
    with FaultProxy((LOOPBACK, server.port)) as proxy:
        yield proxy


def connect(proxy: FaultProxy) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=WAIT)


def receive(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        piece = sock.recv(size - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


def assert_reset(proxy: FaultProxy) -> None:
    """A new connection is reset: at connect, or at its first exchange."""
    with pytest.raises(ConnectionResetError), connect(proxy) as sock:
        sock.sendall(b"again")
        receive(sock, 1)


def test_passes_both_ways_and_counts(proxy: FaultProxy, server: Server) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    with connect(proxy) as sock:
        sender = threading.Thread(target=sock.sendall, args=(payload,))
        sender.start()
        assert receive(sock, len(payload)) == payload
        sender.join()
    assert bytes(server.received[0]) == payload
    assert proxy.bytes_passed(Direction.UP) == len(payload)
    assert proxy.bytes_passed(Direction.DOWN) == len(payload)
    assert proxy.connections == 1 and proxy.active is Fault.PASS


def test_reset_strikes_at_its_byte_and_lasts_until_healed(
    proxy: FaultProxy, server: Server
) -> None:
    proxy.arm(Fault.RESET, after=1000, direction=Direction.UP)
    with connect(proxy) as sock:
        sock.sendall(b"x" * 600)
        assert receive(sock, 600) == b"x" * 600
        with pytest.raises(ConnectionResetError):
            sock.sendall(b"y" * 600)
            receive(sock, 1)  # the reset reaches the client on its next read at the latest
            sock.sendall(b"z" * 65536)
    assert proxy.tripped.is_set()
    assert proxy.bytes_passed(Direction.UP) == 1000  # exactly: 600 + 400 of the second send
    sent = b"x" * 600 + b"y" * 400
    assert sent.startswith(bytes(server.received[0]))  # none after; the RST may drop a tail
    assert len(server.received[0]) >= 600
    assert_reset(proxy)
    proxy.heal()
    with connect(proxy) as sock:
        sock.sendall(b"healed")
        assert receive(sock, 6) == b"healed"


def test_stall_forwards_nothing_more_and_heal_drops_the_stalled(proxy: FaultProxy) -> None:
    greeting = b"g" * 200_000
    talker = Server(greeting)
    try:
        with FaultProxy((LOOPBACK, talker.port)) as stalling:
            stalling.arm(Fault.STALL, after=70_000, direction=Direction.DOWN)
            with connect(stalling) as sock:
                assert receive(sock, 70_000) == greeting[:70_000]
                sock.settimeout(QUIET)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
                assert stalling.active is Fault.STALL
                with connect(stalling) as second:  # a new connection is accepted, and held
                    second.settimeout(QUIET)
                    with pytest.raises(TimeoutError):
                        second.recv(1)
                stalling.heal()
                sock.settimeout(WAIT)
                with pytest.raises(ConnectionResetError):
                    sock.recv(1)
            with connect(stalling) as fresh:
                assert receive(fresh, len(greeting)) == greeting
    finally:
        talker.close()


def test_disappear_refuses_new_connections_until_healed(proxy: FaultProxy, server: Server) -> None:
    port = proxy.port
    proxy.arm(Fault.DISAPPEAR, after=10, direction=Direction.UP)
    with connect(proxy) as sock, pytest.raises(ConnectionResetError):
        sock.sendall(b"0123456789abcdef")
        receive(sock, 11)
        sock.sendall(b"z" * 65536)
    assert proxy.bytes_passed(Direction.UP) == 10
    assert b"0123456789".startswith(bytes(server.received[0]))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=WAIT).close()
    proxy.heal()
    assert proxy.port == port
    with connect(proxy) as sock:
        sock.sendall(b"back")
        assert receive(sock, 4) == b"back"


def test_armed_at_zero_strikes_at_once(proxy: FaultProxy) -> None:
    proxy.arm(Fault.RESET)
    assert proxy.active is Fault.RESET
    assert_reset(proxy)


def test_a_negative_byte_count_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError, match="after=-1"):
        proxy.arm(Fault.STALL, after=-1)
