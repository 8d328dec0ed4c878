"""safe-pip: pip install through a guard that proves every index page fresh."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
