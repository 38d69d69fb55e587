"""Two (or more) builds of fluxion on the same fleet, alternating round by round.

On a shared 2-core machine one fleet run scatters by ±25 % with the other work, so a change is
judged against the code before it in alternating rounds, on the one fleet (the benchmark's 21
locations, each behind its own link, built once). Each build is a ``src`` directory (e.g. one
made with ``git archive <commit> src | tar -x -C /tmp/base``). Per run it prints where the time
went, from the run's log: the first connect, the last store staged, the last one published and
what follows it (the last release of the file and the process's exit); then each build's median.

    source /tmp/fluxion-pg.env
    git archive HEAD~1 src | tar -x -C /tmp/base
    PYTHONPATH=src python benchmarks/fleet_ab.py --rounds 5 base=/tmp/base/src new=src
    PYTHONPATH=src python benchmarks/fleet_ab.py --rounds 3 new=src --env ETL_TIENDAS=tienda_12

The first round of every build is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path

import benchmark as bench
from run_events import keep_events, last_events

from fluxion_harness.linkproxy import FaultyProxy

keep_events()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", help="NAME=SRC_DIR, run in this order each round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every run")
    args = parser.parse_args()
    builds = dict(item.split("=", 1) for item in args.builds)
    extra = dict(item.split("=", 1) for item in args.env)
    server = bench.server_from_env()
    stores = bench.chain_fleet(len(bench.CHAIN_LOCATIONS), 14)
    with (
        bench.stores_in_postgres(
            server,
            [f.location for f in stores],
            [f.products for f in stores],
            [f.traps for f in stores],
        ) as built,
        contextlib.ExitStack() as links,
        tempfile.TemporaryDirectory(prefix="fluxion-ab-") as tmp,
    ):
        work = Path(tmp)
        proxies = [
            links.enter_context(
                FaultyProxy.link(
                    (server.host, server.port),
                    latency=f.latency_ms / 1000,
                    bandwidth=f.mb_per_s * 1e6,
                )
            )
            for f in stores
        ]
        stores_file = bench.write_stores_file(
            work / "fleet.toml", built, server.host, [p.port for p in proxies]
        )
        env = {**bench.base_env(server, stores_file, work), **extra}
        seconds: dict[str, list[float]] = {name: [] for name in builds}
        for number in range(args.rounds + 1):
            for name, src in builds.items():
                m = bench.fluxion("arrow")({**env, "PYTHONPATH": src}, work)
                spans = m.spans.values()
                staged, published = max(s[1] for s in spans), max(s[2] for s in spans)
                released = max(at for event, at in last_events if event == "target released")
                openings = sum(1 for event, _ in last_events if event == "target released")
                print(
                    f"round {number} {name:<8} {m.seconds:6.2f} s  CPU {m.cpu_seconds:4.1f} s  "
                    f"lock {m.lock_held_seconds or 0:.2f} s  first connect "
                    f"{min(s[0] for s in spans):.2f}  last staged {staged:.2f}  "
                    f"last published {published:.2f}  released {released:.2f}  "
                    f"openings {openings}  exit {m.seconds:.2f}",
                    flush=True,
                )
                if number:
                    seconds[name].append(m.seconds)
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.2f} s of", [f"{v:.2f}" for v in values])


if __name__ == "__main__":
    main()
