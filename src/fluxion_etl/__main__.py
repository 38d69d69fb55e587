"""``python -m fluxion_etl`` is the ``fluxion-etl`` command."""

from fluxion_etl.launch import main

raise SystemExit(main())
