"""Lock files: PEP 751 ``pylock.toml`` read into pins, and the index state a lock records."""
