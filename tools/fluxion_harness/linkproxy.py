"""A store's link on 127.0.0.1, for the tests, the soak and the benchmarks: what a VPN does to it.

- :class:`FaultyProxy` forwards to the real PostgreSQL server and, for the connections it is
  told to spoil, resets the TCP connection after a number of bytes sent to the client (a VPN
  reset mid-transfer) or goes silent after them (a half-open link: the driver blocks in recv).
  It can also give the link a store's distance and width: ``latency`` seconds added in each
  direction and a ``bandwidth`` cap in bytes per second (each direction, shared by every
  connection through the proxy, as a store's VPN link is). ``FaultyProxy.link`` is the same
  proxy without any fault (the benchmarks' fleet, a soak's slow store).
- :class:`SilentListener` accepts TCP connections and never answers (a server behind a dead
  route that still completes the handshake): only a login timeout gets the driver out.
- :class:`ClosingListener` accepts and at once closes, or resets, each connection (a firewall or
  a server refusing sessions after the TCP handshake).

The kernel here has no ``netem``, so distance and width are made in user space: each chunk read
from one side leaves when the link is free (its bytes at ``bandwidth``) and arrives ``latency``
later, in order. Chunks are not held behind each other's latency, so the link keeps its
bandwidth; reading is paced, so a sender feels the cap as TCP back-pressure rather than a proxy
that swallows everything at once. The TCP handshake itself is not delayed (one round trip per
connection, small against a fetch).

Real sockets and the real driver; nothing here pretends to be PostgreSQL.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, Self

Fault = Literal["reset", "stall"]

#: bytes read at once; smaller under a bandwidth cap, so pacing is smooth at a few MB/s
_CHUNK = 65536
_PACED_CHUNK = 16384


@dataclass
class FaultyProxy:
    """TCP proxy 127.0.0.1:<port> -> ``upstream``; spoils the first ``spoil`` connections
    (``spoil=None``: all of them) after ``after_bytes`` bytes from the server.

    ``latency`` (seconds, each direction) and ``bandwidth`` (bytes per second, each direction,
    the whole link) shape every connection, spoiled or not; both off by default.
    """

    upstream: tuple[str, int]
    fault: Fault
    after_bytes: int
    spoil: int | None = 1
    port: int = 0
    connections: int = 0
    spoiled: int = 0
    #: bytes the server sent through the proxy (to the client or cut off), all connections
    server_bytes: int = 0
    latency: float = field(default=0.0, kw_only=True)
    bandwidth: float | None = field(default=None, kw_only=True)
    _listener: socket.socket = field(init=False, repr=False)
    _sockets: list[socket.socket] = field(default_factory=list, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {self.latency!r}")
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be > 0 bytes/s, got {self.bandwidth!r}")
        # one pacer per direction: the link's width is shared by its connections
        self._pacers = {"up": _Pacer(self.bandwidth), "down": _Pacer(self.bandwidth)}

    @classmethod
    def link(
        cls, upstream: tuple[str, int], *, latency: float = 0.0, bandwidth: float | None = None
    ) -> FaultyProxy:
        """A link that is only far and narrow: no connection is spoiled."""
        return cls(
            upstream, fault="stall", after_bytes=0, spoil=0, latency=latency, bandwidth=bandwidth
        )

    def __enter__(self) -> FaultyProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._closed.set()
        self._listener.close()
        for sock in self._sockets:
            _close(sock)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            with self._lock:
                self.connections += 1
                spoil = self.spoil is None or self.connections <= self.spoil
                self.spoiled += int(spoil)
            self._sockets += [client, server]
            limit = self.after_bytes if spoil else None
            threading.Thread(target=self._pipe, args=(client, server), daemon=True).start()
            threading.Thread(
                target=self._pipe, args=(server, client, limit), kwargs={"down": True}, daemon=True
            ).start()

    def _pipe(
        self,
        source: socket.socket,
        sink: socket.socket,
        limit: int | None = None,
        *,
        down: bool = False,
    ) -> None:
        sent = 0
        try:
            for chunk in self._arrivals(source, down):
                if limit is not None and sent + len(chunk) > limit:
                    sink.sendall(chunk[: limit - sent])
                    self._spoil(source, sink)
                    return
                sink.sendall(chunk)
                sent += len(chunk)
            # the end of the stream goes through as a FIN: a close alone sends none while the
            # other direction's thread is blocked in recv on the same socket
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        _close(sink)

    def _arrivals(self, source: socket.socket, down: bool) -> Iterator[bytes]:
        """What ``source`` sends, as the far end of the link receives it (ends at EOF)."""
        if not self.latency and self.bandwidth is None:
            while chunk := source.recv(_CHUNK):
                self._count(chunk, down)
                yield chunk
            return
        in_flight: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()
        threading.Thread(
            target=self._send_paced, args=(source, in_flight, down), daemon=True
        ).start()
        while True:
            due, chunk = in_flight.get()
            wait = due - time.monotonic()
            if wait > 0 and self._closed.wait(wait):
                return
            if not chunk:
                return
            yield chunk

    def _send_paced(
        self, source: socket.socket, in_flight: queue.SimpleQueue[tuple[float, bytes]], down: bool
    ) -> None:
        """Read ``source`` no faster than the link carries it; queue each chunk with the time it
        arrives at the far end (an empty chunk: the end)."""
        pacer = self._pacers["down" if down else "up"]
        chunk_size = _CHUNK if self.bandwidth is None else _PACED_CHUNK
        try:
            while chunk := source.recv(chunk_size):
                self._count(chunk, down)
                sent = pacer.send(len(chunk))
                in_flight.put((sent + self.latency, chunk))
                wait = sent - time.monotonic()  # back-pressure: read on when it has left
                if wait > 0 and self._closed.wait(wait):
                    break
        except OSError:
            pass
        in_flight.put((time.monotonic() + self.latency, b""))

    def _count(self, chunk: bytes, down: bool) -> None:
        if down:
            with self._lock:
                self.server_bytes += len(chunk)

    def _spoil(self, server: socket.socket, client: socket.socket) -> None:
        if self.fault == "reset":  # the tunnel drops: both ends cut mid-transfer
            # shutdown, not only close: the other pipe thread is blocked in recv on these
            # sockets, and a close would wait for it; linger 0 makes the final close an RST.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                _close(sock)
        else:  # stall: keep both ends open and forward nothing more
            self._closed.wait()


class _Listener:
    """A TCP listener on 127.0.0.1 that hands each accepted connection to :meth:`_accepted`;
    the connections it keeps (``_held``) are closed with it."""

    def __enter__(self) -> Self:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._listener.close()
        for sock in self._held:
            _close(sock)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._accepted(conn)

    def _accepted(self, conn: socket.socket) -> None:
        raise NotImplementedError


class SilentListener(_Listener):
    """Accepts connections on 127.0.0.1 and never sends a byte."""

    def _accepted(self, conn: socket.socket) -> None:
        self._held.append(conn)


class ClosingListener(_Listener):
    """Accepts connections on 127.0.0.1 and closes each at once; ``reset``: with an RST."""

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset
        self.accepted = 0

    def _accepted(self, conn: socket.socket) -> None:
        self.accepted += 1
        if self.reset:  # linger 0: close() sends an RST instead of a FIN
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        _close(conn)


class _Pacer:
    """One direction of a link of ``bandwidth`` bytes per second (None: unlimited)."""

    def __init__(self, bandwidth: float | None) -> None:
        self._bandwidth = bandwidth
        self._free_at = 0.0
        self._lock = threading.Lock()

    def send(self, size: int) -> float:
        """Book ``size`` bytes on the link; the time their last byte has left."""
        now = time.monotonic()
        if self._bandwidth is None:
            return now
        with self._lock:
            self._free_at = max(self._free_at, now) + size / self._bandwidth
            return self._free_at


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
