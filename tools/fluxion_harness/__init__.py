"""Harnesses for the tests, the benchmarks and the chaos soak: not part of the installed package.

The soak (``python -m fluxion_harness.soak``, or ``./scripts/soak.sh``), a backend-like reader
and the backend's read patterns, a TCP fault proxy, a PostgreSQL writer of Stellar source
databases, and ready databases for publish benchmarks. They need the dev extra (psycopg2, ...).
"""
