"""The link proxy's distance and width, measured through real sockets on 127.0.0.1.

The benchmarks' fleet and the soak trust these two knobs to stand for a store's VPN link, so
they are checked against a plain TCP server: a round trip costs twice the latency, a transfer
takes its size over the bandwidth, and the cap is the link's, shared by its connections.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from fluxion_harness.linkproxy import FaultyProxy

PAYLOAD = 1_000_000


@pytest.fixture
def server() -> Iterator[tuple[str, int]]:
    """Answers b"ping" with b"pong", and b"send" with PAYLOAD bytes then EOF."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            request = conn.recv(4)
            conn.sendall(b"pong" if request == b"ping" else b"x" * PAYLOAD)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()
    listener.close()


def round_trip(port: int) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.monotonic()
        sock.sendall(b"ping")
        assert sock.recv(4) == b"pong"
        return time.monotonic() - started


def download(port: int) -> int:
    received = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"send")
        while chunk := sock.recv(65536):
            received += len(chunk)
    return received


def timed(action: object) -> float:
    started = time.monotonic()
    assert callable(action)
    action()
    return time.monotonic() - started


def test_a_round_trip_through_the_link_costs_twice_its_latency(server: tuple[str, int]) -> None:
    with FaultyProxy.link(server, latency=0.05) as far, FaultyProxy.link(server) as near:
        assert round_trip(near.port) < 0.05
        assert 0.1 <= round_trip(far.port) < 0.4


def test_a_transfer_takes_its_size_over_the_links_bandwidth(server: tuple[str, int]) -> None:
    with FaultyProxy.link(server, bandwidth=4_000_000) as narrow:
        seconds = timed(lambda: download(narrow.port))
        assert narrow.server_bytes == PAYLOAD
    assert 0.22 <= seconds < 0.6  # 1 MB at 4 MB/s: 0.25 s


def test_latency_does_not_eat_the_bandwidth(server: tuple[str, int]) -> None:
    """Chunks in flight overlap: 1 MB at 4 MB/s with 40 ms each way is ~0.25 s + ~0.08 s, not
    one latency per chunk (62 chunks of 16 KiB would take 2.5 s)."""
    with FaultyProxy.link(server, latency=0.04, bandwidth=4_000_000) as link:
        seconds = timed(lambda: download(link.port))
    assert 0.3 <= seconds < 0.8


def test_the_bandwidth_is_the_links_shared_by_its_connections(server: tuple[str, int]) -> None:
    with FaultyProxy.link(server, bandwidth=4_000_000) as link:
        downloads = [threading.Thread(target=download, args=(link.port,)) for _ in range(2)]
        started = time.monotonic()
        for thread in downloads:
            thread.start()
        for thread in downloads:
            thread.join()
        seconds = time.monotonic() - started
        assert link.connections == 2
    assert 0.45 <= seconds < 1.2  # 2 MB at 4 MB/s


def test_a_shaped_link_still_resets_after_the_bytes_it_was_told(server: tuple[str, int]) -> None:
    received = 0
    with FaultyProxy(
        server, fault="reset", after_bytes=100_000, latency=0.01, bandwidth=8_000_000
    ) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port)) as sock:
            sock.sendall(b"send")
            with contextlib.suppress(ConnectionResetError):  # or a FIN first: the race of a cut
                while chunk := sock.recv(65536):
                    received += len(chunk)
        assert proxy.spoiled == 1
    assert received <= 100_000  # nothing past the cut (an RST may also drop some before it)


def test_a_negative_latency_or_a_zero_bandwidth_is_refused() -> None:
    with pytest.raises(ValueError, match="latency must be >= 0"):
        FaultyProxy.link(("127.0.0.1", 1), latency=-0.01)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        FaultyProxy.link(("127.0.0.1", 1), bandwidth=0)
