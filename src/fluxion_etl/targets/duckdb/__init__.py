"""The DuckDB target (the embedded default, ``DATABASE_PATH``): one file the backend reads.

:mod:`.target` is the seam's face; :mod:`.connect` opens the file politely (lock wait, reader
gap); :mod:`.publisher` swaps snapshots; :mod:`.schema` holds the migrations and ledger SQL;
:mod:`.status` and :mod:`.freshness` read the ledger; :mod:`.adoption` adopts an old loader's
table; :mod:`.runguard` keeps one run per file; :mod:`.path` and :mod:`.storage` say which files
and storage versions are acceptable.
"""
