"""``python -m safe_pip``."""

from __future__ import annotations

from safe_pip.cli import entry_point

if __name__ == "__main__":
    entry_point()
