"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each direction.

Why: the stores sit behind a VPN with tens of milliseconds of round trip, and that latency (not
bandwidth) is what makes store-level parallelism pay off. The kernel here has no ``netem``, so
the benchmark's fleet scenario puts this proxy in front of PostgreSQL instead.

Each chunk read from one side is delivered to the other ``delay`` seconds after it arrived, in
order; chunks are not held back behind each other's delay, so the link keeps its bandwidth
and only gains latency (a round trip costs ``2 * delay`` more).

    python benchmarks/latency_proxy.py --target-port 5432 --delay-ms 20

prints ``listening on 127.0.0.1:PORT`` once ready and runs until killed (SIGTERM/SIGINT).
It only ever listens on, and connects to, 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

LOOPBACK = "127.0.0.1"
CHUNK_BYTES = 64 * 1024


async def _delayed_pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float
) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it was read."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if not chunk:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    delivering = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(CHUNK_BYTES)
            queue.put_nowait((time.monotonic() + delay, chunk))
            if not chunk:
                break
        await delivering
    except (ConnectionError, OSError):
        delivering.cancel()
    finally:
        writer.close()


async def serve(listen_port: int, target_port: int, delay: float) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter):
        try:
            server_reader, server_writer = await asyncio.open_connection(LOOPBACK, target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _delayed_pipe(client_reader, server_writer, delay),
            _delayed_pipe(server_reader, client_writer, delay),
            return_exceptions=True,
        )

    server = await asyncio.start_server(handle, LOOPBACK, listen_port)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on {LOOPBACK}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    parser.add_argument("--target-port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--delay-ms", type=float, default=20.0, help="added in each direction")
    args = parser.parse_args()
    asyncio.run(serve(args.listen_port, args.target_port, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
