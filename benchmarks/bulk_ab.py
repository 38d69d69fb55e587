"""Two (or more) builds of fluxion on the one bulk store, alternating round by round.

The single-store counterpart of ``fleet_ab.py``: the store (``--products``, 500k by default:
~397k source rows) is built once in PostgreSQL, then every round runs each build's
``fluxion-etl run`` (and, with ``--raw``, the raw arrow-odbc fetch, the floor) one after the
other, the builds' order turned by one each round, so a shared, noisy machine affects all
alike. Wall time only (no memory sampler, which
costs the run ~0.1 s). Per run it prints the wall time and where it went, from the run's log:
seconds from the spawn to the first connect, to the staged extract, to the published store,
and the phases' own seconds (de-duplication, publish under the lock).

    source scripts/postgres-login.sh <role> CREATEDB
    git archive HEAD~1 src | tar -x -C /tmp/base
    PYTHONPATH=src:tools python benchmarks/bulk_ab.py --rounds 5 --raw base=/tmp/base/src new=src

The first round is a warm-up and not counted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import benchmark as bench
from run_events import keep_events, last_events

from fluxion_etl.demo.stellar import CHAIN_LOCATIONS

keep_events()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="+", help="NAME=SRC_DIR, run in this order each round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--products", type=int, default=500_000)
    parser.add_argument("--raw", action="store_true", help="the raw fetch too, each round")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for every run")
    parser.add_argument("--events", action="store_true", help="print every run's log timeline")
    args = parser.parse_args()
    builds = dict(item.split("=", 1) for item in args.builds)
    extra = dict(item.split("=", 1) for item in args.env)
    server = bench.server_from_env()
    with (
        bench.stores_in_postgres(server, CHAIN_LOCATIONS[:1], args.products) as (store,),
        tempfile.TemporaryDirectory(prefix="fluxion-bulk-ab-") as tmp,
    ):
        work = Path(tmp)
        stores_file = bench.write_stores_file(
            work / "stores.toml", [store], server.host, server.port
        )
        env = {**bench.base_env(server, stores_file, work), **extra, "ETL_ENGINE": "arrow"}
        print(f"{store.source_rows:,} source rows, {store.published_rows:,} published", flush=True)
        seconds: dict[str, list[float]] = {name: [] for name in builds}
        locks: dict[str, list[float]] = {}
        if args.raw:
            seconds["raw fetch"] = []
        db = work / "fluxion.duckdb"
        names = list(builds)
        for number in range(args.rounds + 1):
            # the order turns each round: a run right after another fluxion run pays for the
            # kernel writing back that run's files (~50 MB), so no build may always come second
            order = names[number % len(names) :] + names[: number % len(names)]
            for name in order:
                src = builds[name]
                db.unlink(missing_ok=True)
                m = bench.measure(
                    [sys.executable, "-m", "fluxion_etl", "run", "--db", str(db)],
                    {**env, "PYTHONPATH": src},
                    name,
                    sampled=False,
                )
                if m.rows_out != store.published_rows:
                    raise SystemExit(f"{name} published {m.rows_out:,} rows")
                ((connect, staged, published),) = m.spans.values()
                phases = "  ".join(
                    f"{phase.split(' ')[0]} {value:.2f}" for phase, value in m.phases.items()
                )
                print(
                    f"round {number} {name:<10} {m.seconds:6.2f} s  connect {connect:.2f}  "
                    f"staged {staged:.2f}  published {published:.2f}  lock "
                    f"{m.lock_held_seconds or 0:.2f}  [{phases}]  load {_load()}",
                    flush=True,
                )
                if args.events:
                    print("   ", "  ".join(f"{e} {at:.2f}" for e, at in last_events))
                if number:
                    seconds[name].append(m.seconds)
                    locks.setdefault(name, []).append(m.lock_held_seconds or 0.0)
            if args.raw:
                m = bench.measure(
                    [sys.executable, str(bench.HERE / "contenders.py"), "raw-fetch"],
                    {**env, "PYTHONPATH": builds[next(iter(builds))]},
                    "raw fetch",
                    sampled=False,
                )
                print(f"round {number} raw fetch  {m.seconds:6.2f} s  load {_load()}", flush=True)
                if number:
                    seconds["raw fetch"].append(m.seconds)
    for name, values in seconds.items():
        print(f"{name}: median {statistics.median(values):.2f} s of", [f"{v:.2f}" for v in values])
    for name, values in locks.items():
        held = [f"{v:.2f}" for v in values]
        print(f"{name}: lock median {statistics.median(values):.2f} s of", held)


def _load() -> str:
    """The 1-minute load average, printed with every figure (the machine is shared)."""
    return Path("/proc/loadavg").read_text(encoding="utf-8").split()[0]


if __name__ == "__main__":
    main()
