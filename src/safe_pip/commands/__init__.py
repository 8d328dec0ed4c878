"""One module per command: ``install`` (and the other pip commands), ``check``, ``run``,
``serve``, ``status``, ``demo``."""
