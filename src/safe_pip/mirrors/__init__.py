"""``safe-pip mirror-check``: a mirror's pages judged against the index's journal.

``upstream`` reads the journal (bounded calls), ``pages`` reads the mirror's pages
concurrently (and asks devpi to refetch), ``judge`` decides per project (pure), ``check``
runs them together.
"""
