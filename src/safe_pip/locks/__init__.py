"""Pins and locks: pins read from requirements and PEP 751 ``pylock.toml`` files, judged
against the index (``checker``), and the index state a lock records (``lockstate``)."""
