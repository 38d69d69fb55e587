"""The PostgreSQL target (``DATABASE_URL``): the backend's server, e.g. RDS.

:mod:`.target` is the seam's face; :mod:`.url` reads and checks the URL and login;
:mod:`.locks` holds the per-store advisory locks; :mod:`.schema` the migrations and ledger SQL;
:mod:`.copy` the binary COPY of a snapshot; :mod:`.vacuum` the after-run vacuum.
"""
