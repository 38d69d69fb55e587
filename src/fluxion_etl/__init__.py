"""fluxion_etl: per-store inventory snapshots from Stellar POS databases into DuckDB."""

__version__ = "0.1.0"
