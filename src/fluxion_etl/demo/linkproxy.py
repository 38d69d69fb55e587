"""A store's link on 127.0.0.1, for the tests, the soak and the benchmarks: what a VPN does to it.

- :class:`FaultyProxy` forwards to the real PostgreSQL server and, for the connections it is
  told to spoil, resets the TCP connection after a number of bytes sent to the client (a VPN
  reset mid-transfer) or goes silent after them (a half-open link: the driver blocks in recv).
- :class:`SilentListener` accepts TCP connections and never answers (a server behind a dead
  route that still completes the handshake): only a login timeout gets the driver out.
- :class:`ClosingListener` accepts and at once closes, or resets, each connection (a firewall or
  a server refusing sessions after the TCP handshake).

Real sockets and the real driver; nothing here pretends to be PostgreSQL.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Literal

Fault = Literal["reset", "stall"]


@dataclass
class FaultyProxy:
    """TCP proxy 127.0.0.1:<port> -> ``upstream``; spoils the first ``spoil`` connections
    (``spoil=None``: all of them) after ``after_bytes`` bytes from the server."""

    upstream: tuple[str, int]
    fault: Fault
    after_bytes: int
    spoil: int | None = 1
    port: int = 0
    connections: int = 0
    spoiled: int = 0
    #: bytes the server sent through the proxy (to the client or cut off), all connections
    server_bytes: int = 0
    _listener: socket.socket = field(init=False, repr=False)
    _sockets: list[socket.socket] = field(default_factory=list, repr=False)
    _closed: threading.Event = field(default_factory=threading.Event, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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
            while chunk := source.recv(65536):
                if down:
                    with self._lock:
                        self.server_bytes += len(chunk)
                if limit is not None and sent + len(chunk) > limit:
                    sink.sendall(chunk[: limit - sent])
                    self._spoil(source, sink)
                    return
                sink.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        _close(sink)

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


class SilentListener:
    """Accepts connections on 127.0.0.1 and never sends a byte."""

    def __enter__(self) -> SilentListener:
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
            self._held.append(conn)


class ClosingListener:
    """Accepts connections on 127.0.0.1 and closes each at once; ``reset``: with an RST."""

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset
        self.accepted = 0

    def __enter__(self) -> ClosingListener:
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port: int = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.accepted += 1
            if self.reset:  # linger 0: close() sends an RST instead of a FIN
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            _close(conn)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
