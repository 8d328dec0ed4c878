"""Index pages and journals as data: the page model, its parsers and renderers, the
freshness verdict and the ``--as-of`` replay. Pure: no network, no files."""
