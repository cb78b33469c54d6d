"""A loopback TCP proxy that fails on purpose: the fault injector of the reliability tests.

Put it between a client and a server (an object store emulator, PostgreSQL, Redis) and arm one
fault, to strike once a chosen number of bytes has passed in a chosen direction (``up``: client
to server, ``down``: server to client), counted over every connection since it was armed:

- ``stall``: nothing more is forwarded, either way, on any connection, old or new; connections
  stay open and nothing is read from them (the peers' buffers fill, their writes block). What a
  hung load balancer or a black-holed path looks like to a client.
- ``reset``: every connection is reset (RST) and every new one is reset as it is accepted.
- ``disappear``: the listening socket closes (new connections are refused) and every
  connection is reset: the server is gone.

The byte that trips a fault is exact: the first ``after`` bytes are forwarded, none after. A
fault lasts until ``heal()``, which drops the connections it left stalled and listens again on
the same port; from then on everything passes. ``pass`` (no fault) is the default.

Threads, one pair per connection, each waking every 50 ms to see the proxy's state; sockets are
closed only by the last thread using them, so no descriptor is reused under a thread's feet.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from enum import StrEnum
from types import TracebackType
from typing import Self

LOOPBACK = "127.0.0.1"
TICK = 0.05
BUFFER = 64 * 1024


class Fault(StrEnum):
    PASS = "pass"
    STALL = "stall"
    RESET = "reset"
    DISAPPEAR = "disappear"


class Direction(StrEnum):
    UP = "up"
    """Client to server (an upload's body, a query)."""
    DOWN = "down"
    """Server to client (a download, a dump)."""


def _reset(sock: socket.socket) -> None:
    """Close with an RST rather than a FIN."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One proxied connection: the client's socket, the upstream socket, two pumps."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.lock = threading.Lock()
        self.ending: str | None = None
        """``reset`` or ``close`` once the link must end."""
        self._pumps = 2

    def end(self, how: str) -> None:
        with self.lock:
            if self.ending is None or how == "reset":
                self.ending = how

    def pump_done(self) -> bool:
        """The last pump out closes both sockets; True for it."""
        with self.lock:
            self._pumps -= 1
            last = self._pumps == 0
        if last:
            for sock in (self.client, self.upstream):
                if self.ending == "reset":
                    _reset(sock)
                else:
                    with contextlib.suppress(OSError):
                        sock.close()
        return last


class FaultProxy:
    """``host:port`` forwards to ``upstream``; ``arm`` a fault, ``heal`` it."""

    def __init__(self, upstream: tuple[str, int], host: str = LOOPBACK, port: int = 0) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self.connections = 0
        """Connections accepted so far."""
        self.tripped = threading.Event()
        """Set when the armed fault struck."""
        self._lock = threading.Lock()
        self._fault = Fault.PASS
        self._after = 0
        self._direction = Direction.UP
        self._counted = {Direction.UP: 0, Direction.DOWN: 0}
        self._links: list[_Link] = []
        self._held: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._listen_lock = threading.Lock()
        self._stopping = threading.Event()

    # --- control ---------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def arm(self, fault: Fault, after: int = 0, direction: Direction = Direction.UP) -> None:
        """Strike ``fault`` once ``after`` more bytes have gone ``direction`` (0: now)."""
        if after < 0:
            raise ValueError(f"after={after}: a byte count cannot be negative")
        with self._lock:
            self._fault = Fault(fault)
            self._after = after
            self._direction = Direction(direction)
            self._counted = {Direction.UP: 0, Direction.DOWN: 0}
            self.tripped.clear()
            if after == 0 and self._fault is not Fault.PASS:
                self._trip()

    def heal(self) -> None:
        """Everything passes again; connections a stall left hanging are dropped."""
        with self._lock:
            stalled = self.tripped.is_set() and self._fault is Fault.STALL
            gone = self.tripped.is_set() and self._fault is Fault.DISAPPEAR
            self._fault = Fault.PASS
            self.tripped.clear()
            self._counted = {Direction.UP: 0, Direction.DOWN: 0}
            held, self._held = self._held, []
            if stalled:
                for link in self._links:
                    link.end("reset")
        for sock in held:
            _reset(sock)
        if gone:
            self._listen_again()

    def _listen_again(self) -> None:
        """Once the acceptor has closed the shut-down listener, bind the same port again."""
        deadline = time.monotonic() + 5.0
        while not self._stopping.is_set():
            with self._listen_lock:
                if self._listener is None:
                    try:
                        self._listen()
                        return
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
            time.sleep(TICK / 5)

    def bytes_passed(self, direction: Direction) -> int:
        """Bytes forwarded ``direction`` since the last ``arm`` or ``heal``."""
        with self._lock:
            return self._counted[Direction(direction)]

    @property
    def active(self) -> Fault:
        """The fault in force now (``pass`` until an armed one strikes)."""
        with self._lock:
            return self._fault if self.tripped.is_set() else Fault.PASS

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        with self._listen_lock:
            self._listen()
        acceptor = threading.Thread(target=self._accept, name="faultproxy accept", daemon=True)
        acceptor.start()
        self._threads.append(acceptor)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            links = list(self._links)
            held, self._held = self._held, []
        for link in links:
            link.end("close")
        for sock in held:
            _reset(sock)
        for thread in list(self._threads):
            thread.join(timeout=2.0)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # --- internals -------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        listener.settimeout(TICK)
        self.port = int(listener.getsockname()[1])
        self._listener = listener

    def _trip(self, spare: _Link | None = None) -> None:
        """Called with the lock held, once, when the armed fault strikes. ``spare``'s pump
        first sends the bytes before the trip, then ends its link itself."""
        self.tripped.set()
        listener = self._listener
        if self._fault is Fault.DISAPPEAR and listener is not None:
            # Stop listening now (Linux: the port refuses from here on); the acceptor closes it.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
        if self._fault in (Fault.RESET, Fault.DISAPPEAR):
            for link in self._links:
                if link is not spare:
                    link.end("reset")

    def _accept(self) -> None:
        while not self._stopping.is_set():
            with self._listen_lock:
                listener = self._listener
            if listener is None:
                time.sleep(TICK)
                continue
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:  # shut down: the server disappeared; heal() listens again
                with self._listen_lock:
                    if self._listener is listener:
                        listener.close()
                        self._listener = None
                continue
            self.connections += 1
            self._admit(client)
        with self._listen_lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None

    def _admit(self, client: socket.socket) -> None:
        fault = self.active
        if fault in (Fault.RESET, Fault.DISAPPEAR):
            _reset(client)
            return
        if fault is Fault.STALL:
            with self._lock:
                self._held.append(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5.0)
        except OSError:
            _reset(client)
            return
        for sock in (client, upstream):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        with self._lock:
            self._links.append(link)
        for source, target, direction in (
            (client, upstream, Direction.UP),
            (upstream, client, Direction.DOWN),
        ):
            thread = threading.Thread(
                target=self._pump,
                args=(link, source, target, direction),
                name=f"faultproxy {direction}",
                daemon=True,
            )
            thread.start()
        self._threads = [t for t in self._threads if t.is_alive()]

    def _stalled(self) -> bool:
        return self.active is Fault.STALL

    def _pump(
        self, link: _Link, source: socket.socket, target: socket.socket, direction: Direction
    ) -> None:
        try:
            while link.ending is None and not self._stopping.is_set():
                if self._stalled():
                    time.sleep(TICK)
                    continue
                readable, _, _ = select.select([source], [], [], TICK)
                if not readable or link.ending is not None or self._stalled():
                    continue
                try:
                    data = source.recv(BUFFER)
                except BlockingIOError:
                    continue
                except OSError:
                    link.end("reset")
                    break
                if not data:
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
                    break
                data = self._admit_bytes(data, direction, link)
                if data and not self._send(link, target, data):
                    break
                if self.active in (Fault.RESET, Fault.DISAPPEAR):
                    time.sleep(TICK)  # let the bytes before the trip be read before the RST
                    link.end("reset")
        finally:
            if link.pump_done():
                with self._lock:
                    if link in self._links:
                        self._links.remove(link)

    def _admit_bytes(self, data: bytes, direction: Direction, link: _Link) -> bytes:
        """What may pass of ``data``; trips the armed fault at its exact byte."""
        with self._lock:
            if self.tripped.is_set():
                return b"" if self._fault is not Fault.PASS else data
            armed = self._fault is not Fault.PASS and direction is self._direction
            if armed:
                room = self._after - self._counted[direction]
                if len(data) >= room:
                    data = data[: max(0, room)]
                    self._counted[direction] += len(data)
                    self._trip(spare=link)
                    return data
            self._counted[direction] += len(data)
            return data

    def _send(self, link: _Link, target: socket.socket, data: bytes) -> bool:
        view = memoryview(data)
        while view:
            if link.ending is not None or self._stopping.is_set():
                return False
            _, writable, _ = select.select([], [target], [], TICK)
            if not writable:
                continue
            try:
                sent = target.send(view)
            except BlockingIOError:
                continue
            except OSError:
                link.end("reset")
                return False
            view = view[sent:]
        return True
